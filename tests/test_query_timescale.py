"""Candles from a TimescaleDB-mode hot store (hypertable, compressed-capable chunks) equal the
lake's and the independent truth. Needs TICKVAULT_TEST_TSDB_URL pointing at a server with the
timescaledb extension; skipped with the reason otherwise."""

from __future__ import annotations

import pytest

from factories import SESSIONS_END as END
from factories import SESSIONS_START as START
from factories import session_ticks
from tickvault.core.wire import ticks_to_table
from tickvault.services.api import Vault
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake
from truth import as_rows, truth_bars

pytestmark = pytest.mark.timescaledb


@pytest.fixture
def tsdb_settings(tsdb_settings):
    # the test dates lie in 2025: keep retention and compression policies away from them
    return tsdb_settings.model_copy(update={"tick_retention_days": 3650, "compress_after_days": 3000, "candles_1m_retention_days": None})


def test_timescale_hot_candles_equal_lake_and_truth(tsdb_settings) -> None:
    truth = session_ticks(seed=13)
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
