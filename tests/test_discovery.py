"""Discovery: what the archive holds (symbols, coverage), `all` symbols, and why an answer is empty."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest
from click.testing import CliRunner

from factories import session_ticks
from helpers import settings_env
from tickvault.cli import cli
from tickvault.core.calendar import trading_date
from tickvault.core.wire import ticks_to_table
from tickvault.services.api import Vault
from tickvault.services.sync.reconcile import reconcile
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

SYMBOLS = ("005930", "000660")
DAY = date(2026, 1, 2)


@pytest.fixture
def env(settings, monkeypatch):
    truth = session_ticks(seed=5, symbols=SYMBOLS)
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    hot.upsert(ticks_to_table(truth))
    lake.upsert(ticks_to_table([t for t in truth if trading_date(t.ts) != DAY or t.symbol == "005930"]))  # the lake lacks one series
    lake.close()
    hot.close()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    return settings, truth


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_symbols_of_a_date_a_range_and_ever(env) -> None:
    settings, _ = env
    with Vault(settings) as vault:
        assert vault.symbols("2026-01-02", source="hot") == ["000660", "005930"]
        assert vault.symbols("20260102", source="cold") == ["005930"]
        assert vault.symbols(start="2025-11-12", end="2026-01-05", source="cold") == ["000660", "005930"]
        assert vault.symbols(source="cold") == ["000660", "005930"]
        assert vault.symbols("2026-01-03", source="cold") == []  # a Saturday


def test_coverage_counts_each_store_and_marks_proven_series(env) -> None:
    settings, truth = env
    expected = Counter((trading_date(t.ts), t.symbol) for t in truth)
    reconcile(settings.model_copy(update={"tick_retention_days": 3650}), DAY)  # writes the integrity report: 000660 is missing from the lake that day
    with Vault(settings) as vault:
        table = vault.coverage("2025-11-12", "2026-01-05")
    rows = table.to_pylist()
    hot = {(r["day"], r["symbol"]): r for r in rows if r["store"] == "hot"}
    cold = {(r["day"], r["symbol"]): r for r in rows if r["store"] == "cold"}
    assert {k: r["ticks"] for k, r in hot.items()} == dict(expected)
    assert (DAY, "000660") not in cold and cold[(DAY, "005930")]["ticks"] == expected[(DAY, "005930")]
    first = min(t.ts for t in truth if t.symbol == "005930" and trading_date(t.ts) == DAY)
    assert hot[(DAY, "005930")]["first_ts"] == first
    assert hot[(DAY, "005930")]["proven"] is True and hot[(DAY, "000660")]["proven"] is False
    assert hot[(date(2026, 1, 5), "005930")]["proven"] is False  # never reconciled


def test_cli_symbols_and_coverage(env) -> None:
    listed = run("symbols", "--date", "2026-01-02", "--source", "hot")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.split()[:3] == ["symbol", "000660", "005930"]
    as_json = run("coverage", "--start", "2026-01-02", "--source", "cold", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert [(r["store"], r["symbol"]) for r in json.loads(as_json.stdout)] == [("cold", "005930")]


def test_all_symbols_in_candles(env) -> None:
    result = run("candles", "all", "--tf", "1d", "--start", "2026-01-02", "--source", "hot", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(b["symbol"] for b in json.loads(result.stdout)) == ["000660", "005930"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["123456", "--start", "2026-01-02", "--source", "hot"], "123456: unknown symbol on 2026-01-02"),
        (["005930", "--start", "2026-01-03"], "2026-01-03: not a trading day"),
        (["005930", "--start", "2026-01-07", "--source", "cold"], "the archive holds no ticks for 2026-01-07"),
        (["005930", "--start", "2025-11-10", "--source", "hot"], "outside the hot store's retention"),
    ],
)
def test_an_empty_answer_says_why(env, args: list[str], reason: str) -> None:
    result = run("candles", *args[:1], "--tf", "1m", *args[1:])
    assert result.exit_code == 0
    assert result.stdout.strip().endswith("(0 rows)")
    assert reason in result.stderr and result.stderr.startswith("tickvault: no rows: ")
