"""Tick generators shared by the hot-store tests (no tests here)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa

from tickvault.model import KST, Tick, ticks_to_table

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
