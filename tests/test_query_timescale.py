"""Candles from a TimescaleDB-mode hot store (hypertable, compressed-capable chunks) equal the
lake's and the independent truth. Needs TICKVAULT_TEST_TSDB_URL pointing at a server with the
timescaledb extension; skipped with the reason otherwise."""

from __future__ import annotations

import os

import psycopg
import pytest

from helpers import drop_schema
from test_bars import END, START, as_rows, make_ticks, truth_bars
from tickvault.core.wire import ticks_to_table
from tickvault.services.api import Vault
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

pytestmark = pytest.mark.timescaledb


def _tsdb_url() -> str:
    url = os.environ.get("TICKVAULT_TEST_TSDB_URL")
    if not url:
        pytest.skip("TICKVAULT_TEST_TSDB_URL is not set: no TimescaleDB server to test against")
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            available = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()[0]
    except psycopg.Error as exc:
        pytest.skip(f"TimescaleDB server at TICKVAULT_TEST_TSDB_URL unreachable: {exc}")
    if not available:
        pytest.skip("the server at TICKVAULT_TEST_TSDB_URL has no timescaledb extension")
    return url


@pytest.fixture
def tsdb_settings(settings):
    url = _tsdb_url()
    # the test dates lie in 2025: keep retention and compression policies away from them
    s = settings.model_copy(update={"pg_url": url, "hot_mode": "timescaledb", "tick_retention_days": 3650, "compress_after_days": 3000,
                                     "candles_1m_retention_days": None})
    yield s
    drop_schema(url, s.pg_schema)


def test_timescale_hot_candles_equal_lake_and_truth(tsdb_settings) -> None:
    truth = make_ticks(seed=13)
    hot, lake = HotStore(tsdb_settings), Lake(tsdb_settings)
    hot.init()
    assert hot.mode == "timescaledb"
    lake.init()
    hot.upsert(ticks_to_table(truth))
    lake.upsert(ticks_to_table(truth))
    with Vault(tsdb_settings) as vault:
        for tf in ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w", "1mo"):
            for session in ("regular", "all"):
                from_hot = vault.candles(None, tf, START, END, source="hot", session=session)
                assert from_hot.equals(vault.candles(None, tf, START, END, source="cold", session=session)), (tf, session)
                assert as_rows(from_hot) == truth_bars(truth, tf, session), (tf, session)
    lake.close()
    hot.close()
