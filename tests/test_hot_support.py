"""Tick generators shared by the hot-store tests (no tests here)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa

from tickvault.core.wire import KST, Tick, ticks_to_table

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


def table(ticks: list[Tick]) -> pa.Table:
    return ticks_to_table(ticks)


# ---------------------------------------------------------------- candles computed independently
ORIGIN = datetime(2000, 1, 3, tzinfo=KST)  # buckets start at 00:00 KST (so intraday at 09:00 KST)
WIDTHS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
CANDLE_COLUMNS = "bucket, symbol, open, high, low, close, volume, trade_count, turnover, vwap, open_cum, close_cum"


def bucket_of(ts: datetime, width: timedelta) -> datetime:
    return ORIGIN + ((ts - ORIGIN) // width) * width


def truth_candles(ticks: list[Tick], level: str) -> dict[tuple[str, datetime], tuple]:
    """Plain-Python candles: open/close = trade with the lowest/highest cum_volume in the bucket,
    vwap = turnover / volume rounded half-up to 4 places."""
    from decimal import ROUND_HALF_UP, localcontext

    width = WIDTHS[level]
    groups: dict[tuple[str, datetime], list[Tick]] = {}
    for t in {t.key: t for t in ticks}.values():
        groups.setdefault((t.symbol, bucket_of(t.ts, width)), []).append(t)
    out = {}
    for (symbol, bucket), rows in groups.items():
        rows.sort(key=lambda t: t.cum_volume)
        volume = sum(t.volume for t in rows)
        turnover = sum(t.price * t.volume for t in rows)
        with localcontext() as ctx:
            ctx.prec = 60
            vwap = (turnover / volume).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        out[(symbol, bucket)] = (
            rows[0].price, max(t.price for t in rows), min(t.price for t in rows), rows[-1].price,
            volume, len(rows), turnover, vwap, rows[0].cum_volume, rows[-1].cum_volume,
        )
    return out


def stored_candles(conn, schema: str, level: str) -> dict[tuple[str, datetime], tuple]:
    rows = conn.execute(f"SELECT {CANDLE_COLUMNS} FROM {schema}.candles_{level}").fetchall()
    return {(r[1], r[0]): tuple(r[2:]) for r in rows}


# ---------------------------------------------------------------- TimescaleDB test server
TSDB_ENV = "TICKVAULT_TEST_TSDB_URL"


def tsdb_skip_reason(url: str | None) -> str | None:
    import psycopg

    if not url:
        return f"{TSDB_ENV} is not set: TimescaleDB tests need a PostgreSQL server with the timescaledb extension"
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    except psycopg.Error as exc:
        return f"{TSDB_ENV} server unreachable ({str(exc).strip().splitlines()[0]})"
    if row is None:
        return f"the server at {TSDB_ENV} has no timescaledb extension available"
    return None
