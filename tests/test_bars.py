"""Bars from both stores' candle SQL (DuckDB on the lake, PostgreSQL) against bars computed here, independently,
in plain Python from the truth ticks. Also home of the small multi-day truth data set that
tests/test_query*.py reuse.

The independent computation knows the test days' sessions and period labels by heart (no
tickvault.core.calendar), floors with Python's timedelta arithmetic, orders by (date, cum_volume)
and rounds vwap with Decimal — none of which the SQL shares.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa
import pytest

from tickvault.core.bars import CANDLE_COLUMNS, fill_forward
from tickvault.core.config import Settings
from tickvault.core.wire import KST, UTC, Tick, ticks_to_table
from tickvault.stores.lake import Lake

# day -> (open, close) in KST; the first trading day of 2026 opens at 10:00, 2025-11-13 is exam day.
SESSIONS: dict[date, tuple[time, time]] = {
    date(2025, 11, 12): (time(9), time(15, 30)),
    date(2025, 11, 13): (time(10), time(16, 30)),
    date(2025, 12, 30): (time(9), time(15, 30)),
    date(2026, 1, 2): (time(10), time(15, 30)),
    date(2026, 1, 5): (time(9), time(15, 30)),
}
WEEK_LABEL = {
    date(2025, 11, 12): date(2025, 11, 10),
    date(2025, 11, 13): date(2025, 11, 10),
    date(2025, 12, 30): date(2025, 12, 29),
    date(2026, 1, 2): date(2025, 12, 29),
    date(2026, 1, 5): date(2026, 1, 5),
}
MONTH_LABEL = {
    date(2025, 11, 12): date(2025, 11, 3),
    date(2025, 11, 13): date(2025, 11, 3),
    date(2025, 12, 30): date(2025, 12, 1),
    date(2026, 1, 2): date(2026, 1, 2),
    date(2026, 1, 5): date(2026, 1, 2),
}
BOGUS_DAY = date(2026, 1, 3)  # a Saturday: ticks stamped on it must never become bars
SYMBOLS = ("000660", "005930", "069500")
START = datetime(2025, 11, 12, tzinfo=KST)
END = datetime(2026, 1, 6, tzinfo=KST)
TIMEFRAMES = ("10s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w", "1mo")
TICK = Decimal("0.5")


def _at(day: date, t: time, seconds: int = 0) -> datetime:
    return datetime.combine(day, t, tzinfo=KST) + timedelta(seconds=seconds)


def make_ticks(seed: int = 7, days: tuple[date, ...] = tuple(SESSIONS), symbols: tuple[str, ...] = SYMBOLS) -> list[Tick]:
    """A few hundred trades per symbol and day: pre-market, opening auction, continuous trading
    with several trades per second at different prices, closing auction, post-market and
    after-hours single-price trades. Prices step by 0.5 so turnover and vwap have decimals."""
    rng = random.Random(seed)
    ticks: list[Tick] = []
    for symbol in symbols:
        price = Decimal(rng.randrange(2000, 90000))
        for day in days:
            open_t, close_t = SESSIONS.get(day, (time(9), time(15, 30)))
            opening, closing = _at(day, open_t), _at(day, close_t)
            cum = 0

            def trade(ts: datetime, p: Decimal) -> None:
                nonlocal cum
                volume = rng.randrange(1, 500)
                cum += volume
                ticks.append(Tick(symbol, ts.astimezone(UTC), p, volume, cum, rng.choice(["B", "S", None]), "sim"))  # noqa: B023 - called in this iteration

            for s in sorted(rng.sample(range(600), 3)):  # pre-market 08:30-08:40
                trade(_at(day, time(8, 30), s), price)
            trade(opening, price)  # opening auction
            second = 1
            continuous_end = int((closing - opening).total_seconds()) - 600
            while second < continuous_end:
                for _ in range(rng.choice([1, 2, 3])):  # same-second trades, price moving
                    price = max(Decimal(100), price + TICK * rng.randrange(-4, 5))
                    trade(opening + timedelta(seconds=second), price)
                second += rng.randrange(20, 160)
            trade(closing, price)  # closing auction match
            for s in sorted(rng.sample(range(600, 1800), 2)):  # post-market closing-price trades
                trade(closing + timedelta(seconds=s), price)
            for k in range(1, 4):  # after-hours single price, every 10 minutes
                trade(closing + timedelta(minutes=30 + 10 * k), price + TICK * rng.randrange(-2, 3))
    return ticks


def bogus_weekend_ticks() -> list[Tick]:
    ts = _at(BOGUS_DAY, time(10)).astimezone(UTC)
    return [Tick(SYMBOLS[0], ts, Decimal(1000), 5, 5, None, "sim")]


def truth_bars(ticks: list[Tick], tf: str, session: str, start: datetime = START, end: datetime = END) -> list[tuple]:
    """Bars computed the slow, obvious way."""
    unit = {"s": 1, "m": 60, "h": 3600}
    groups: dict[tuple[str, datetime], list[tuple[date, Tick]]] = defaultdict(list)
    for t in ticks:
        if not (start <= t.ts < end):
            continue
        local = t.ts.astimezone(KST)
        day = local.date()
        if day not in SESSIONS:
            continue
        open_t, close_t = SESSIONS[day]
        opening, closing = _at(day, open_t), _at(day, close_t)
        if session == "regular" and not (opening <= local < closing + timedelta(minutes=10)):
            continue
        if tf in ("1d", "1w", "1mo"):
            label = {"1d": day, "1w": WEEK_LABEL[day], "1mo": MONTH_LABEL[day]}[tf]
            bucket = _at(label, time(0))
        else:
            width = timedelta(seconds=int(tf[:-1]) * unit[tf[-1]])
            bucket = opening + ((local - opening) // width) * width
        groups[(t.symbol, bucket.astimezone(UTC))].append((day, t))
    rows = []
    for (symbol, bucket), members in sorted(groups.items()):
        members.sort(key=lambda m: (m[0], m[1].cum_volume))
        prices = [m[1].price for m in members]
        volume = sum(m[1].volume for m in members)
        turnover = sum(m[1].price * m[1].volume for m in members)
        vwap = (turnover / Decimal(volume)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        rows.append((bucket, symbol, prices[0], max(prices), min(prices), prices[-1], volume, len(members), turnover, vwap))
    return rows


def as_rows(table: pa.Table) -> list[tuple]:
    """Candle table -> comparable tuples (Decimals compare by value: 62700 == 62700.0000)."""
    cols = table.to_pydict()
    return list(zip(*(cols[name] for name in CANDLE_COLUMNS)))


@pytest.fixture(scope="module")
def truth() -> list[Tick]:
    return make_ticks()


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
    start = _at(date(2025, 11, 13), time(11, 7))
    end = _at(date(2026, 1, 2), time(12))
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
    start, end = _at(day, time(0)), _at(day + timedelta(days=1), time(0))
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
    start, end = _at(day, time(0)), _at(day + timedelta(days=1), time(0))
    bars = lake.candles("30m", start, _at(day, time(11)), symbols=["005930"])
    filled = fill_forward(bars, "30m", start, end, now=_at(day, time(12, 10)))
    last = filled.column("bucket").to_pylist()[-1].astimezone(KST).time()
    assert last == time(12)
