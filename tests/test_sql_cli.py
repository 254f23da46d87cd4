"""`tickvault sql`: queries on the lake (views, candles macro, calendar), file/stdin input, the prompt, --hot read-only."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from factories import session_ticks
from helpers import settings_env
from tickvault.cli import cli
from tickvault.cli.sql import interactive, read_statements
from tickvault.core import calendar as krx
from tickvault.core.wire import ticks_to_table
from tickvault.services.api import Vault
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake
from tickvault.stores.lake.location import LakeLocation
from tickvault.stores.lake.views import open_console, run_query


@pytest.fixture
def env(settings, monkeypatch):
    truth = ticks_to_table(session_ticks(seed=3, symbols=("005930", "000660")))
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    hot.upsert(truth)
    lake.upsert(truth)
    lake.close()
    hot.close()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    return settings, truth


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def test_count_of_ticks_as_csv_json_and_parquet(env, tmp_path) -> None:
    _, truth = env
    result = run("sql", "select count(*) as n from ticks", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(io.StringIO(result.stdout))) == [{"n": str(truth.num_rows)}]
    as_json = run("sql", "select venue, count(*) as n from ticks group by venue", "--json")
    assert json.loads(as_json.stdout) == [{"venue": "KRX", "n": truth.num_rows}]
    out = tmp_path / "daily.parquet"
    written = run("sql", "select * from ticks where symbol = '005930'", "--format", "parquet", "--out", str(out))
    assert written.exit_code == 0 and pq.read_table(out).num_rows == sum(1 for s in truth.column("symbol").to_pylist() if s == "005930")


def test_the_candles_macro_equals_the_api(env) -> None:
    settings, _ = env
    result = run("sql", "select bucket, close, volume from candles('15m', DATE '2026-01-02', DATE '2026-01-02', symbols := ['005930'])",
                 "--json")
    assert result.exit_code == 0, result.output
    with Vault(settings) as vault:
        bars = vault.candles("005930", "15m", "2026-01-02", source="cold")
    got = json.loads(result.stdout)
    assert [int(b["volume"]) for b in got] == bars.column("volume").to_pylist()
    assert [b["close"] for b in got] == [format(c.normalize(), "f") for c in bars.column("close").to_pylist()]


def test_query_from_a_file_and_from_stdin(env, tmp_path) -> None:
    script = tmp_path / "q.sql"
    script.write_text("select count(*) as days\nfrom tv_calendar\nwhere day between DATE '2026-01-01' and DATE '2026-01-31';\n")
    from_file = run("sql", "--file", str(script), "--format", "csv")
    january = len(krx.trading_days(date(2026, 1, 1), date(2026, 1, 31)))
    assert from_file.exit_code == 0 and from_file.stdout.splitlines()[1] == str(january)
    piped = run("sql", "--format", "csv", stdin="select count(distinct symbol) as n from ticks")
    assert piped.exit_code == 0 and piped.stdout.splitlines() == ["n", "2"]


def test_a_mistake_is_one_line_exit_2(env) -> None:
    result = run("sql", "select nope from ticks")
    assert result.exit_code == 2
    assert result.stderr.startswith("tickvault: DuckDB: ") and len(result.stderr.strip().splitlines()) == 1


def test_hot_is_read_only(env) -> None:
    _, truth = env
    counted = run("sql", "--hot", "select count(*) as n from ticks", "--format", "csv")
    assert counted.exit_code == 0, counted.output
    assert counted.stdout.splitlines() == ["n", str(truth.num_rows)]
    refused = run("sql", "--hot", "delete from ticks")
    assert refused.exit_code == 2 and "read-only transaction" in refused.stderr
    assert run("sql", "--hot", "select count(*) from ticks", "--format", "csv").stdout.splitlines()[1] == str(truth.num_rows)


def test_the_prompt_takes_multi_line_statements_and_survives_mistakes(env, capsys) -> None:
    settings, truth = env
    typed = iter(["select count(*) as n", "from ticks;", "select nope;", "", ".quit", "select 1;"])

    def prompt(_: str) -> str:
        return next(typed)

    con = open_console(LakeLocation.of(settings), 2025, 2026)
    try:
        interactive(lambda q: run_query(con, q), prompt)
    finally:
        con.close()
    shown = capsys.readouterr()
    assert f"{truth.num_rows}" in shown.out and "(1 rows)" in shown.out
    assert "DuckDB:" in shown.err
    assert next(typed) == "select 1;"  # stopped at .quit


def test_read_statements_splits_at_semicolons() -> None:
    lines = iter(["select 1", "  as x;", "", "select 2;", "select 3"])

    def prompt(_: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    assert list(read_statements(prompt)) == ["select 1\n  as x;", "select 2;", "select 3"]
