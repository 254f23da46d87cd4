"""What the archive holds for one symbol and day, seen as the broker would see it.

Works on the union of the hot store and the lake (a trade held by either is not lost),
as plain per-symbol lists: a symbol's day is at most a few hundred thousand ticks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pyarrow as pa

from ...core.wire import KST, NATURAL_KEY, TICK_SCHEMA


@dataclass(frozen=True, slots=True)
class StoredTick:
    ts: datetime  # KST
    price: Decimal
    volume: int
    cum_volume: int


@dataclass(frozen=True, slots=True)
class MissingRange:
    """Trades with ``lo < cum_volume <= hi`` and ``lo_ts <= ts <= hi_ts`` are missing.

    ``lo_ts`` is None when the range opens the day."""

    lo: int
    hi: int
    lo_ts: datetime | None
    hi_ts: datetime

    @property
    def volume(self) -> int:
        return self.hi - self.lo


@dataclass
class SymbolArchive:
    symbol: str
    ticks: list[StoredTick]  # ordered by cum_volume, one per natural key
    missing: list[MissingRange]
    conflicts: int  # ticks claiming cumulative volume another tick already holds

    @property
    def cums(self) -> set[int]:
        return {t.cum_volume for t in self.ticks}

    @property
    def volume(self) -> int:
        return sum(t.volume for t in self.ticks)

    def minute_volumes(self) -> dict[datetime, int]:
        out: dict[datetime, int] = defaultdict(int)
        for t in self.ticks:
            out[t.ts.replace(second=0)] += t.volume
        return dict(out)

    def last_before(self, instant: datetime) -> StoredTick | None:
        """The last tick (by cumulative volume) stamped before ``instant``."""
        best = None
        for t in self.ticks:
            if t.ts < instant:
                best = t
            else:
                break
        return best

    def first_from(self, instant: datetime) -> StoredTick | None:
        for t in self.ticks:
            if t.ts >= instant:
                return t
        return None


def union_by_key(*tables: pa.Table) -> pa.Table:
    """Rows of all tables, first occurrence of each natural key kept (TICK_SCHEMA)."""
    parts = [t.select(TICK_SCHEMA.names).cast(TICK_SCHEMA) for t in tables if t.num_rows]
    if not parts:
        return TICK_SCHEMA.empty_table()
    table = pa.concat_tables(parts)
    indexed = table.append_column("_i", pa.array(range(table.num_rows), pa.int64()))
    first = indexed.group_by(list(NATURAL_KEY), use_threads=False).aggregate([("_i", "min")])
    keep = pa.compute.sort_indices(first.column("_i_min"))
    return table.take(pa.compute.take(first.column("_i_min"), keep))


def by_symbol(table: pa.Table) -> dict[str, SymbolArchive]:
    """Split a day's ticks per symbol and find the breaks in each cumulative volume."""
    rows: dict[str, list[StoredTick]] = defaultdict(list)
    cols = table.select(["symbol", "ts", "price", "volume", "cum_volume"]).to_pydict()
    for symbol, ts, price, volume, cum in zip(cols["symbol"], cols["ts"], cols["price"], cols["volume"], cols["cum_volume"]):
        rows[symbol].append(StoredTick(ts.astimezone(KST), price, volume, cum))
    return {symbol: analyse(symbol, ticks) for symbol, ticks in rows.items()}


def analyse(symbol: str, ticks: list[StoredTick]) -> SymbolArchive:
    ticks = sorted(ticks, key=lambda t: (t.cum_volume, t.ts))
    missing: list[MissingRange] = []
    conflicts = 0
    prev: StoredTick | None = None
    for t in ticks:
        before = t.cum_volume - t.volume
        have = prev.cum_volume if prev else 0
        if before > have:
            missing.append(MissingRange(have, before, prev.ts if prev else None, t.ts))
        elif before < have:
            conflicts += 1
        prev = t
    return SymbolArchive(symbol, ticks, missing, conflicts)


def minute(ts: datetime) -> datetime:
    return ts.astimezone(KST).replace(second=0, microsecond=0)


def merge_windows(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching [start, end) windows merged, in time order."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def window_of(rng: MissingRange, day_open: datetime) -> tuple[datetime, datetime]:
    """Whole minutes covering a missing range (its trades lie between its bounding ticks)."""
    start = minute(rng.lo_ts) if rng.lo_ts is not None else day_open
    return start, minute(rng.hi_ts) + timedelta(minutes=1)
