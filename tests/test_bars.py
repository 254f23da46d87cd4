"""Bars from both stores' candle SQL (DuckDB on the lake, PostgreSQL) against bars computed here, independently,
in plain Python from the truth ticks. Also home of the small multi-day truth data set that
tests/test_query*.py reuse.

The independent computation knows the test days' sessions and period labels by heart (no
tickvault.core.calendar), floors with Python's timedelta arithmetic, orders by (date, cum_volume)
and rounds vwap with Decimal — none of which the SQL shares.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

import pytest

from factories import BOGUS_DAY, SESSIONS, at, bogus_weekend_ticks, session_ticks
from factories import SESSIONS_END as END
from factories import SESSIONS_START as START
from tickvault.core.bars import fill_forward
from tickvault.core.config import Settings
from tickvault.core.wire import KST, Tick, ticks_to_table
from tickvault.stores.lake import Lake
from truth import as_rows, truth_bars

TIMEFRAMES = ("10s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w", "1mo")


@pytest.fixture(scope="module")
def truth() -> list[Tick]:
    return session_ticks()


@pytest.fixture(scope="module")
def lake(truth: list[Tick], tmp_path_factory: pytest.TempPathFactory):
    """A real lake holding the truth ticks (and the bogus weekend ones)."""
    store = Lake(Settings(lake_dir=tmp_path_factory.mktemp("lake")))
    store.init()
    store.upsert(ticks_to_table(list(reversed(truth)) + bogus_weekend_ticks()))
    yield store
    store.close()


def test_data_set_has_the_awkward_cases(truth: list[Tick]) -> None:
    seconds = defaultdict(int)
    for t in truth:
        seconds[(t.symbol, t.ts)] += 1
    assert max(seconds.values()) >= 2, "same-second trades are what makes ts ordering wrong"
    assert len(truth) < 20_000


@pytest.mark.parametrize("session", ["regular", "all"])
@pytest.mark.parametrize("tf", TIMEFRAMES)
def test_duckdb_bars_match_independent_truth(lake, truth: list[Tick], tf: str, session: str) -> None:
    got = lake.candles(tf, START, END, session=session)
    expected = truth_bars(truth, tf, session)
    assert len(got) == len(expected) > 0
    assert as_rows(got) == expected


def test_duckdb_symbol_filter_and_partial_range(lake, truth: list[Tick]) -> None:
    start = at(date(2025, 11, 13), time(11, 7))
    end = at(date(2026, 1, 2), time(12))
    got = lake.candles("15m", start, end, symbols=["005930"], session="all")
    expected = [r for r in truth_bars(truth, "15m", "all", start, end) if r[1] == "005930"]
    assert as_rows(got) == expected


def test_four_hour_bars_on_normal_and_late_open_days(lake) -> None:
    got = lake.candles("4h", START, END, symbols=["005930"])
    starts = defaultdict(list)
    for bucket in got.column("bucket").to_pylist():
        local = bucket.astimezone(KST)
        starts[local.date()].append(local.time())
    assert starts[date(2025, 11, 12)] == [time(9), time(13)]  # 13:00 bar holds the 15:30 closing auction
    assert starts[date(2026, 1, 2)] == [time(10), time(14)]  # first trading day: 10:00 open
    assert starts[date(2025, 11, 13)] == [time(10), time(14)]  # exam day: 10:00-16:30


def test_daily_bars_never_on_weekends_or_holidays(lake) -> None:
    for session in ("regular", "all"):
        got = lake.candles("1d", START, END, session=session)
        days = {b.astimezone(KST).date() for b in got.column("bucket").to_pylist()}
        assert days == set(SESSIONS)
        assert BOGUS_DAY not in days


def test_postgres_bars_equal_duckdb_bars(settings, truth: list[Tick], lake) -> None:
    from tickvault.stores.hot import HotStore

    store = HotStore(settings)
    store.init()
    store.upsert(ticks_to_table(list(reversed(truth)) + bogus_weekend_ticks()))
    for tf in ("1m", "5m", "4h", "1d", "1w", "1mo"):
        for session in ("regular", "all"):
            pg = store.candles(tf, START, END, session=session)
            dk = lake.candles(tf, START, END, session=session)
            assert pg.equals(dk), (tf, session)
    some = store.candles("15m", START, END, symbols=["069500", "000660"])
    store.close()
    assert set(some.column("symbol").to_pylist()) == {"069500", "000660"}
    assert as_rows(some) == [r for r in truth_bars(truth, "15m", "regular") if r[1] in ("069500", "000660")]


def test_fill_forward_carries_close_with_zero_volume(lake) -> None:
    day = date(2026, 1, 5)
    start, end = at(day, time(0)), at(day + timedelta(days=1), time(0))
    bars = lake.candles("1m", start, end, symbols=["005930"])
    filled = fill_forward(bars, "1m", start, end, now=end)
    rows = as_rows(filled)
    buckets = [r[0].astimezone(KST).time() for r in rows]
    # every minute of the session, 09:00 through the 15:30 closing-auction bar, once each
    assert buckets == [(datetime(2000, 1, 1, 9) + timedelta(minutes=i)).time() for i in range(391)]
    real = {r[0]: r for r in as_rows(bars)}
    previous_close = None
    for r in rows:
        if r[0] in real:
            assert r == real[r[0]]
        else:
            assert r[2] == r[3] == r[4] == r[5] == previous_close
            assert (r[6], r[7], r[8], r[9]) == (0, 0, 0, None)
        previous_close = r[5]
    assert len(rows) > len(real)


def test_fill_forward_stops_at_now(lake) -> None:
    day = date(2026, 1, 5)
    start, end = at(day, time(0)), at(day + timedelta(days=1), time(0))
    bars = lake.candles("30m", start, at(day, time(11)), symbols=["005930"])
    filled = fill_forward(bars, "30m", start, end, now=at(day, time(12, 10)))
    last = filled.column("bucket").to_pylist()[-1].astimezone(KST).time()
    assert last == time(12)
