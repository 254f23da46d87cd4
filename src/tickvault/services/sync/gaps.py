"""Gaps of the data as a whole: where *no* store holds the trades.

Each store's gaps are ranges of cumulative volume it lacks. A trade is lost only if every
store lacks it, so the gaps of the union are the intersection of the stores' missing ranges.
Beyond a store's last tick its coverage is unknown, so it counts as missing there; a range
still open at the end of the day is not a gap (nothing proves trades happened after the last
tick — only broker data can, see the recovery module). Works on the small gap lists the SQL
produced, never on ticks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .report import Gap


@dataclass(frozen=True)
class LastTick:
    symbol: str
    ts: datetime
    cum_volume: int
    venue: str = "KRX"


Series = tuple[str, str]  # (venue, symbol): one cumulative-volume sequence


@dataclass(frozen=True)
class _Missing:
    """Missing cumulative-volume range (lo, hi] with the ticks bounding it."""

    lo: int
    lo_ts: datetime | None
    hi: float  # math.inf: open to the end of the day
    end_ts: datetime | None = None
    end_cum_volume: int = 0
    end_volume: int = 0


def _missing_ranges(gaps: list[Gap], last: LastTick | None) -> list[_Missing]:
    if last is None:  # the store has nothing of this symbol
        return [_Missing(0, None, math.inf)]
    ranges = [
        _Missing(g.start_cum_volume, g.start_ts, g.end_cum_volume - g.end_volume, g.end_ts, g.end_cum_volume, g.end_volume)
        for g in sorted(gaps, key=lambda g: g.start_cum_volume)
        if g.missing_volume > 0
    ]
    ranges.append(_Missing(last.cum_volume, last.ts, math.inf))
    return ranges


def _intersect(a: list[_Missing], b: list[_Missing]) -> list[_Missing]:
    out: list[_Missing] = []
    i = j = 0
    while i < len(a) and j < len(b):
        x, y = a[i], b[j]
        lo_src = x if x.lo >= y.lo else y
        hi_src = x if x.hi <= y.hi else y
        if lo_src.lo < hi_src.hi:
            out.append(
                _Missing(lo_src.lo, lo_src.lo_ts, hi_src.hi, hi_src.end_ts, hi_src.end_cum_volume, hi_src.end_volume)
            )
        if x.hi <= y.hi:
            i += 1
        else:
            j += 1
    return out


def union_gaps(
    gaps_by_store: Mapping[str, Iterable[Gap]], last_by_store: Mapping[str, Mapping[Series, LastTick]]
) -> list[Gap]:
    """Gaps no store can fill, sorted by venue, symbol and cumulative volume.

    ``gaps_by_store[store]``: that store's breaks; ``last_by_store[store][(venue, symbol)]``: its
    last tick of each series it holds (absent: the store holds nothing of that series).
    """
    stores = list(gaps_by_store)
    grouped: dict[str, dict[Series, list[Gap]]] = {s: {} for s in stores}
    for store in stores:
        for gap in gaps_by_store[store]:
            grouped[store].setdefault((gap.venue, gap.symbol), []).append(gap)
    series = sorted({key for s in stores for key in last_by_store.get(s, {})})
    result: list[Gap] = []
    for venue, symbol in series:
        missing: list[_Missing] | None = None
        for store in stores:
            mine = _missing_ranges(grouped[store].get((venue, symbol), []), last_by_store.get(store, {}).get((venue, symbol)))
            missing = mine if missing is None else _intersect(missing, mine)
        for m in missing or []:
            if math.isinf(m.hi) or m.end_ts is None:
                continue  # open at the end of the day: unknowable without broker data
            result.append(
                Gap(symbol, m.lo_ts, m.lo, m.end_ts, m.end_cum_volume, m.end_volume, int(m.hi) - m.lo, venue)
            )
    return result
