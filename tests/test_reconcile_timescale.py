"""Verify and reconcile with the hot store in TimescaleDB mode (hypertable, compression):
the same SQL must find and repair the same planted differences. Run with
TICKVAULT_TEST_TSDB_URL set to a PostgreSQL with the timescaledb extension."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from factories import DAY, row_of, without
from helpers import store_both
from tickvault.core.config import Settings
from tickvault.dev.simulate import generate_day
from tickvault.services.sync import verify
from tickvault.services.sync.reconcile import reconcile
from tickvault.stores.hot import HotStore


@pytest.mark.timescaledb
def test_planted_differences_repaired_in_timescale_mode(tsdb_settings: Settings) -> None:
    truth = generate_day(DAY, symbols=3, ticks=2000, seed=51)
    krx = truth.filter(pc.equal(truth.column("venue"), "KRX")).column("symbol").to_pylist()
    symbol = max(set(krx), key=krx.count)  # the busiest KRX series
    hot_lost, cold_lost, both_lost = [row_of(truth, symbol, 40)], [row_of(truth, symbol, 200)], [row_of(truth, symbol, 120)]
    store_both(tsdb_settings, without(truth, hot_lost + both_lost), without(truth, cold_lost + both_lost))
    assert HotStore(tsdb_settings).mode == "timescaledb"

    report = reconcile(tsdb_settings, DAY, repair=True)
    assert report.added_to_hot == 1 and report.added_to_cold == 1
    assert [g.missing_volume for g in report.after.gaps] == [truth.column("volume")[both_lost[0]].as_py()]
    assert report.after.differences == []
    after = verify(tsdb_settings, DAY)
    assert after.stores["hot"].ticks == after.stores["cold"].ticks == truth.num_rows - 1
