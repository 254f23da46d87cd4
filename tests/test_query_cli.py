"""`tickvault candles`, `tickvault ticks`, `tickvault lake-sql` end to end (in-process CLI, real stores)."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from factories import session_ticks
from tickvault.cli import cli
from tickvault.core.wire import ticks_to_table
from tickvault.services.api import Vault
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


@pytest.fixture
def env(settings, monkeypatch):
    truth = session_ticks(seed=5, symbols=("005930", "000660"))
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    hot.upsert(ticks_to_table(truth))
    lake.upsert(ticks_to_table(truth))
    lake.close()
    for name, value in (("PG_URL", settings.pg_url), ("PG_SCHEMA", settings.pg_schema), ("LAKE_DIR", str(settings.lake_dir)),
                        ("REDIS_URL", settings.redis_url), ("STREAM", settings.stream), ("HOT_MODE", "postgres")):
        monkeypatch.setenv(f"TICKVAULT_{name}", value)
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    return settings


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_candles_csv_matches_the_api(env) -> None:
    result = run("candles", "005930,000660", "--tf", "15m", "--start", "2026-01-02", "--end", "2026-01-05", "--source", "cold", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    with Vault(env) as vault:
        table = vault.candles("005930,000660", "15m", "2026-01-02", "2026-01-05", source="cold")
    assert len(rows) == table.num_rows > 0
    assert rows[0]["bucket"] == "2026-01-02T10:00:00+09:00"
    assert rows[0]["symbol"] == "000660"
    assert rows[0]["close"] == format(table.column("close")[0].as_py().normalize(), "f")


def test_candles_json_hot_equals_cold(env) -> None:
    base = ("candles", "005930", "--tf", "1d", "--start", "2025-11-12", "--end", "2026-01-05", "--format", "json", "--session", "all")
    hot, cold = run(*base, "--source", "hot"), run(*base, "--source", "cold")
    assert hot.exit_code == cold.exit_code == 0
    assert json.loads(hot.stdout) == json.loads(cold.stdout)
    bars = json.loads(cold.stdout)
    assert [b["bucket"][:10] for b in bars] == ["2025-11-12", "2025-11-13", "2025-12-30", "2026-01-02", "2026-01-05"]
    assert isinstance(bars[0]["volume"], int) and isinstance(bars[0]["vwap"], str)


def test_ticks_to_parquet_and_table(env, tmp_path) -> None:
    out = tmp_path / "t.parquet"
    result = run("ticks", "005930", "--start", "2026-01-02", "--end", "2026-01-02", "--source", "hot", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows > 100 and set(table.column("symbol").to_pylist()) == {"005930"}
    shown = run("ticks", "005930", "--start", "2026-01-02", "--end", "2026-01-02", "--source", "cold")
    assert shown.exit_code == 0 and shown.stdout.rstrip().endswith(f"({table.num_rows} rows)")


def test_bad_input_exits_2_with_one_line(env) -> None:
    result = run("candles", "005930", "--tf", "7x", "--start", "2026-01-02", "--end", "2026-01-02")
    assert result.exit_code == 2
    assert "unknown timeframe '7x'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    parquet = run("candles", "005930", "--tf", "1m", "--start", "2026-01-02", "--end", "2026-01-02", "--format", "parquet")
    assert parquet.exit_code == 2 and "--out" in parquet.stderr


def test_lake_sql_prints_an_attach_script(env) -> None:
    result = run("lake-sql", "--first-year", "2025", "--last-year", "2026")
    assert result.exit_code == 0
    assert "ATTACH 'ducklake:sqlite:" in result.stdout and "READ_ONLY" in result.stdout
    assert "CREATE OR REPLACE TEMP MACRO candles(" in result.stdout


@pytest.mark.parametrize("command", ["candles", "ticks", "lake-sql"])
def test_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_unreachable_store_exits_1_with_one_line(env, monkeypatch) -> None:
    monkeypatch.setenv("TICKVAULT_PG_URL", "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")
    result = run("ticks", "005930", "--start", "2026-01-02", "--end", "2026-01-02", "--source", "hot")
    assert result.exit_code == 1
    assert result.stderr.startswith("tickvault: hot store unreachable") and len(result.stderr.strip().splitlines()) == 1


def test_json_flag_is_format_json_and_end_defaults_to_start(env) -> None:
    """--json is the JSON flag of every command; a single date needs no --end; YYYYMMDD is a date."""
    flagged = run("candles", "005930", "--tf", "1H", "--start", "20260102", "--source", "cold", "--json")
    spelled = run("candles", "005930", "--tf", "1h", "--start", "2026-01-02", "--end", "2026-01-02", "--source", "cold", "--format", "json")
    assert flagged.exit_code == spelled.exit_code == 0, flagged.output
    assert json.loads(flagged.stdout) == json.loads(spelled.stdout) and len(json.loads(spelled.stdout)) >= 5
