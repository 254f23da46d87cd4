"""Ticks and trading days for the tests: every tick factory lives here (plain functions, no fixtures).

- ``one_symbol_ticks``: a continuous run of trades of one symbol (stream, roles, run tests);
- ``interleaved_ticks``: n trades spread over a few symbols, one second apart (lake tests);
- ``day_ticks``: a small realistic KRX day per symbol on the tick-size grid (hot-store tests);
- ``simulated_day``: the simulator's day (sync tests), with ``without`` / ``row_of`` to damage it;
- ``session_ticks``: a multi-day data set with every session kind (bars and query tests).
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pyarrow as pa

from tickvault.core.wire import KST, UTC, Tick, ticks_to_table
from tickvault.dev.simulate import generate_day

DAY = date(2026, 11, 20)  # a Friday: a KRX trading day


def one_symbol_ticks(n: int, start: datetime | None = None, *, step: timedelta = timedelta(seconds=1), symbol: str = "005930",
                     price: Decimal = Decimal(62700), volume: int = 1, received_at: datetime | None = None) -> list[Tick]:
    """``n`` trades ``step`` apart from ``start`` (default DAY 09:00 KST), cum_volume continuous."""
    start = start or datetime(DAY.year, DAY.month, DAY.day, 9, 0, tzinfo=KST)
    return [Tick(symbol, start + i * step, price, volume, volume * (i + 1), "B", "sim", received_at) for i in range(n)]


def interleaved_ticks(n: int, symbols: tuple[str, ...] = ("005930", "000660", "035420"), day: date = DAY, start_cum: int = 0) -> pa.Table:
    """n ticks spread over the symbols, one second apart, consistent cum_volume per symbol."""
    open_ = datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST)
    cum = dict.fromkeys(symbols, start_cum)
    ticks = []
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        volume = 1 + i % 7
        cum[symbol] += volume
        ticks.append(
            Tick(
                symbol=symbol,
                ts=open_ + timedelta(seconds=(start_cum + i) // 2),
                price=Decimal("62700") + Decimal(i % 50) * 100 + Decimal("0.1234") * (i % 3),
                volume=volume,
                cum_volume=cum[symbol],
                side=("B", "S", None)[i % 3],
                source="sim",
                received_at=(open_ + timedelta(seconds=i, microseconds=123457)).astimezone(UTC) if i % 4 else None,
            )
        )
    return ticks_to_table(ticks)


TICK_SIZES = ((2000, 1), (5000, 5), (20000, 10), (50000, 50), (200000, 100), (500000, 500))


def tick_size(price: int) -> int:
    for bound, size in TICK_SIZES:
        if price < bound:
            return size
    return 1000


def day_ticks(day: date, symbols: list[str], per_symbol: int, seed: int = 1, source: str = "sim") -> list[Tick]:
    """A small realistic KRX day: 09:00-15:30 KST, several trades per second, consistent cum_volume."""
    rng = random.Random(seed)
    open_at = datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST)
    ticks: list[Tick] = []
    for symbol in symbols:
        price = rng.choice([1995, 4990, 62700, 183000, 499500])
        cum = 0
        second = 0
        for _ in range(per_symbol):
            second += rng.choice([0, 0, 0, 1, 2, 5, 17, 60])
            second = min(second, 6 * 3600 + 30 * 60 - 1)
            step = tick_size(price)
            price = max(step, price + rng.choice([-2, -1, 0, 0, 1, 2]) * step)
            volume = rng.randint(1, 500)
            cum += volume
            ts = open_at + timedelta(seconds=second)
            ticks.append(Tick(symbol, ts, Decimal(price), volume, cum, rng.choice(["B", "S", None]), source, ts + timedelta(milliseconds=30)))
    return ticks


def simulated_day(symbols: int = 3, ticks: int = 1500, seed: int = 7, day: date = DAY) -> pa.Table:
    return generate_day(day, symbols=symbols, ticks=ticks, seed=seed)


def without(table: pa.Table, rows: list[int]) -> pa.Table:
    keep = pa.array([i not in set(rows) for i in range(table.num_rows)])
    return table.filter(keep)


def row_of(table: pa.Table, symbol: str, nth: int, venue: str = "KRX") -> int:
    """Index in ``table`` of the nth tick (by cum_volume) of ``symbol`` on ``venue``."""
    venues = table.column("venue").to_pylist()
    idx = [i for i, s in enumerate(table.column("symbol").to_pylist()) if s == symbol and venues[i] == venue]
    cums = table.column("cum_volume").to_pylist()
    return sorted(idx, key=lambda i: cums[i])[nth]


# ---------------------------------------------------------------- several days with every session kind
# day -> (open, close) in KST; the first trading day of 2026 opens at 10:00, 2025-11-13 is exam day.
SESSIONS: dict[date, tuple[time, time]] = {
    date(2025, 11, 12): (time(9), time(15, 30)),
    date(2025, 11, 13): (time(10), time(16, 30)),
    date(2025, 12, 30): (time(9), time(15, 30)),
    date(2026, 1, 2): (time(10), time(15, 30)),
    date(2026, 1, 5): (time(9), time(15, 30)),
}
BOGUS_DAY = date(2026, 1, 3)  # a Saturday: ticks stamped on it must never become bars
SESSION_SYMBOLS = ("000660", "005930", "069500")
SESSIONS_START = datetime(2025, 11, 12, tzinfo=KST)
SESSIONS_END = datetime(2026, 1, 6, tzinfo=KST)
TICK = Decimal("0.5")


def at(day: date, t: time, seconds: int = 0) -> datetime:
    return datetime.combine(day, t, tzinfo=KST) + timedelta(seconds=seconds)


def session_ticks(seed: int = 7, days: tuple[date, ...] = tuple(SESSIONS), symbols: tuple[str, ...] = SESSION_SYMBOLS) -> list[Tick]:
    """A few hundred trades per symbol and day: pre-market, opening auction, continuous trading
    with several trades per second at different prices, closing auction, post-market and
    after-hours single-price trades. Prices step by 0.5 so turnover and vwap have decimals."""
    rng = random.Random(seed)
    ticks: list[Tick] = []
    for symbol in symbols:
        price = Decimal(rng.randrange(2000, 90000))
        for day in days:
            open_t, close_t = SESSIONS.get(day, (time(9), time(15, 30)))
            opening, closing = at(day, open_t), at(day, close_t)
            cum = 0

            def trade(ts: datetime, p: Decimal) -> None:
                nonlocal cum
                volume = rng.randrange(1, 500)
                cum += volume
                ticks.append(Tick(symbol, ts.astimezone(UTC), p, volume, cum, rng.choice(["B", "S", None]), "sim"))  # noqa: B023 - called in this iteration

            for s in sorted(rng.sample(range(600), 3)):  # pre-market 08:30-08:40
                trade(at(day, time(8, 30), s), price)
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
    ts = at(BOGUS_DAY, time(10)).astimezone(UTC)
    return [Tick(SESSION_SYMBOLS[0], ts, Decimal(1000), 5, 5, None, "sim")]
