"""Continuity proof of one KST trading day, per store and across both.

Per (venue, symbol), sorted by cumulative volume, every tick must satisfy
``cum_volume[i] - cum_volume[i-1] == volume[i]`` (the first: ``cum_volume == volume``).
Each store answers one aggregate query per (venue, symbol, minute) that carries the continuity
breaks too, so a clean day costs one query per store (plus the day's universe, and the ticks of
the few minutes a session boundary cuts, for the session flags); the tick-level break list is only
fetched when a break exists. Hot-vs-cold differences come from comparing the per-minute
fingerprints (count, volume, max cumulative volume, checksum of natural keys).

A day is complete only when every (venue, symbol) of its recorded universe is proven: a pair
with no tick in any store is "silent" (not proven). Ticks outside every session of their venue
(``core.calendar.in_session``) are stored and flagged, not refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ...core import calendar
from ...core.calendar import is_trading_day, trading_day_bounds
from ...core.config import Settings
from ...core.errors import QueryError, StoreError
from ...stores.contract import TickStore
from .gaps import LastTick, union_gaps
from .report import Duplicate, Gap, MinuteDiff, MinuteStats, OffSession, StoreCheck, VerifyReport

log = logging.getLogger(__name__)
UTC = UTC
SOURCES = ("hot", "cold", "both")

MINUTE = timedelta(minutes=1)
TICK_RESOLUTION = timedelta(microseconds=1)
MinuteKey = tuple[str, str, int]  # (venue, symbol, epoch minute)
Series = tuple[str, str]  # (venue, symbol)


@dataclass
class StoreScan:
    """One store's per-minute fingerprint of the range, and what it says about continuity."""

    check: StoreCheck
    minutes: dict[MinuteKey, MinuteStats] = field(default_factory=dict)
    breaks: int = 0
    breaks_by_series: dict[Series, int] = field(default_factory=dict)
    duplicates_by_series: dict[Series, int] = field(default_factory=dict)
    last: dict[Series, LastTick] = field(default_factory=dict)


def minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def day_range(day: date, until: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the KST day, cut at ``until`` (a reconcile of today skips the last minutes)."""
    start, end = trading_day_bounds(day)
    if until is not None:
        end = max(start, min(end, until))
    return start, end


def scan(store: TickStore, start: datetime, end: datetime, symbols: Sequence[str] | None) -> StoreScan:
    """One aggregate query; a store that cannot be read gives a scan with ``check.error`` set."""
    result = StoreScan(StoreCheck(store.name))
    try:
        rows = store.minute_fingerprints(start, end, symbols)
    except StoreError as exc:  # a down store is reported, not a crash
        log.error("sync: cannot read the %s store (%s)", store.name, exc)
        result.check.error = describe_error(store, exc)
        return result
    names: set[str] = set()
    for row in rows:
        stats = MinuteStats(row.ticks, row.volume, row.max_cum_volume, row.checksum)
        series = (row.venue, row.symbol)
        result.minutes[(row.venue, row.symbol, row.minute)] = stats
        names.add(row.symbol)
        result.check.ticks += stats.ticks
        result.check.volume += stats.volume
        if row.duplicates:
            result.check.duplicates += row.duplicates
            result.duplicates_by_series[series] = result.duplicates_by_series.get(series, 0) + row.duplicates
        if row.breaks:
            result.breaks += row.breaks
            result.breaks_by_series[series] = result.breaks_by_series.get(series, 0) + row.breaks
    result.check.symbols = len(names)
    return result


def describe_error(store: TickStore, exc: StoreError) -> str:
    """One line for the report: what failed and what the operator should do."""
    return f"{type(exc).__name__}: {exc} — the {store.name} store is checked again on the next run"


def scan_all(stores: Sequence[TickStore], start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[StoreScan]:
    """Scan the stores at the same time (each query runs inside its own engine, off the GIL)."""
    if len(stores) == 1:
        return [scan(stores[0], start, end, symbols)]
    with ThreadPoolExecutor(max_workers=len(stores), thread_name_prefix="tickvault-sync-scan") as pool:
        return list(pool.map(lambda store: scan(store, start, end, symbols), stores))


def add_details(store: TickStore, result: StoreScan, start: datetime, end: datetime, symbols: Sequence[str] | None) -> None:
    """Tick-level breaks, each symbol's last tick and duplicate samples (only where needed)."""
    if result.check.error:
        return
    try:
        for row in store.breaks(start, end, symbols):
            if row.missing != 0:
                result.check.gaps.append(
                    Gap(
                        symbol=row.symbol,
                        start_ts=_utc(row.prev_ts),
                        start_cum_volume=row.prev_cum_volume,
                        end_ts=_utc(row.ts),
                        end_cum_volume=row.cum_volume,
                        end_volume=row.volume,
                        missing_volume=row.missing,
                        venue=row.venue,
                    )
                )
            if row.is_last:
                result.last[(row.venue, row.symbol)] = LastTick(row.symbol, _utc(row.ts), row.cum_volume, row.venue)
        if result.check.duplicates:
            result.check.duplicate_samples = [
                Duplicate(r.symbol, _utc(r.ts), r.cum_volume, r.copies, r.venue) for r in store.duplicate_keys(start, end, symbols)
            ]
    except StoreError as exc:
        log.error("sync: cannot read the %s store's breaks (%s)", store.name, exc)
        result.check.error = describe_error(store, exc)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def compare(hot: StoreScan, cold: StoreScan) -> list[MinuteDiff]:
    """Minutes whose fingerprints differ (or exist on one side only)."""
    if hot.check.error or cold.check.error:
        return []
    out: list[MinuteDiff] = []
    for key in sorted(hot.minutes.keys() | cold.minutes.keys()):
        h, c = hot.minutes.get(key), cold.minutes.get(key)
        if h != c:
            out.append(MinuteDiff(key[1], minute_start(key[2]), h, c, key[0]))
    return out


def build_report(
    day: date,
    source: str,
    symbols: Sequence[str] | None,
    stores: Sequence[TickStore],
    scans: Sequence[StoreScan],
    start: datetime,
    end: datetime,
) -> VerifyReport:
    """Fetch break details where any store has breaks, then assemble the report."""
    any_breaks = any(s.breaks for s in scans)
    for store, result in zip(stores, scans):
        if result.breaks or result.check.duplicates or (any_breaks and len(scans) > 1):
            add_details(store, result, start, end, symbols)
    readable = [s for s in scans if not s.check.error]
    if not any_breaks:
        gaps: list[Gap] = []
    elif len(readable) == 1:
        gaps = [g for g in readable[0].check.gaps if g.missing_volume > 0]
    else:
        gaps = union_gaps({s.check.store: s.check.gaps for s in readable}, {s.check.store: s.last for s in readable})
    differences = compare(scans[0], scans[1]) if len(scans) == 2 else []
    series = {(venue, symbol) for result in readable for venue, symbol, _ in result.minutes}
    report = VerifyReport(
        day=day,
        source=source,
        symbols=list(symbols) if symbols else None,
        stores={s.check.store: s.check for s in scans},
        gaps=gaps,
        differences=differences,
        series=series,
    )
    report.universe = read_universe(stores, scans, day, symbols)
    if readable and end >= trading_day_bounds(day)[1]:  # a day cut short (reconcile of today) may still fill up
        report.no_ticks = is_trading_day(day) and not any(s.check.ticks for s in readable)
        report.silent = [pair for pair in report.universe or [] if pair not in series]
    first = next(((store, result) for store, result in zip(stores, scans) if not result.check.error), None)
    if first is not None:
        report.out_of_session = out_of_session(first[0], first[1], day)
    return report


def read_universe(stores: Sequence[TickStore], scans: Sequence[StoreScan], day: date,
                  symbols: Sequence[str] | None) -> list[tuple[str, str]] | None:
    """The day's (venue, symbol) universe as the first readable store recorded it, sorted by symbol
    then venue (only ``symbols`` when given); None when that store recorded none."""
    universe: list[tuple[str, str]] = []
    for store, result in zip(stores, scans):
        if result.check.error:
            continue
        try:
            universe = store.read_universe(day)
        except StoreError as exc:
            log.error("sync: cannot read the %s store's universe of %s (%s)", store.name, day, exc)
            continue
        break
    if not universe:
        return None
    wanted = set(symbols) if symbols else None
    return sorted((p for p in universe if wanted is None or p[1] in wanted), key=lambda p: (p[1], p[0]))


def _minute_class(day: date, venue: str, minute: int, cache: dict[tuple[str, int], str]) -> str:
    """'in' (every instant inside one session of the venue), 'out' (none) or 'part' (check tick by tick)."""
    key = (venue, minute)
    if key not in cache:
        start = minute_start(minute)
        last = start + MINUTE - TICK_RESOLUTION
        windows = calendar.sessions(day, venue)  # type: ignore[arg-type]
        first_in, last_in = calendar.in_session(start, venue), calendar.in_session(last, venue)  # type: ignore[arg-type]
        if first_in is not None and first_in == last_in:
            cache[key] = "in"
        elif first_in is None and last_in is None and not any(
            w.trades_start is not None and start < w.trades_start <= last for w in windows
        ):
            cache[key] = "out"
        else:
            cache[key] = "part"
    return cache[key]


def out_of_session(store: TickStore, result: StoreScan, day: date) -> list[OffSession]:
    """Ticks outside every session of their venue, from the minute fingerprints; only minutes a
    session boundary cuts (NXT's 09:00:30) are read tick by tick."""
    cache: dict[tuple[str, int], str] = {}
    found: dict[tuple[str, str], list[Any]] = {}
    partial: dict[str, dict[int, set[str]]] = {}

    def flag(venue: str, symbol: str, ticks: int, first: datetime, last: datetime) -> None:
        seen = found.setdefault((venue, symbol), [0, first, last])
        seen[0] += ticks
        seen[1], seen[2] = min(seen[1], first), max(seen[2], last)

    for (venue, symbol, minute), stats in result.minutes.items():
        kind = _minute_class(day, venue, minute, cache)
        if kind == "out":
            flag(venue, symbol, stats.ticks, minute_start(minute), minute_start(minute) + MINUTE - TICK_RESOLUTION)
        elif kind == "part":
            partial.setdefault(venue, {}).setdefault(minute, set()).add(symbol)
    try:
        for venue, minutes in partial.items():
            for minute, names in minutes.items():
                ticks = store.read_ticks(minute_start(minute), minute_start(minute) + MINUTE, sorted(names), venue=venue)  # type: ignore[arg-type]
                for symbol, ts in zip(ticks.column("symbol").to_pylist(), ticks.column("ts").to_pylist()):
                    if calendar.in_session(ts, venue) is None:  # type: ignore[arg-type]
                        flag(venue, symbol, 1, ts, ts)
    except StoreError as exc:
        log.error("sync: cannot read the %s store's ticks at a session boundary (%s)", store.name, exc)
    return [OffSession(v, s, n, a.astimezone(UTC), b.astimezone(UTC)) for (v, s), (n, a, b) in sorted(found.items())]


def verify(
    settings: Settings,
    day: date,
    symbols: Sequence[str] | None = None,
    source: str = "both",
    *,
    until: datetime | None = None,
    stores: Sequence[TickStore] | None = None,
) -> VerifyReport:
    """Continuity, duplicates and (source "both") hot-vs-cold differences of one KST day.

    ``stores``: already open stores to use (hot first); by default the ones ``source`` names
    are opened and closed here."""
    if source not in SOURCES:
        raise QueryError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    start, end = day_range(day, until)
    opened = list(stores) if stores is not None else open_stores(settings, source, replica=True)
    try:
        scans = scan_all(opened, start, end, symbols)
        return build_report(day, source, symbols, opened, scans, start, end)
    finally:
        if stores is None:
            for store in opened:
                store.close()


def open_stores(settings: Settings, source: str, replica: bool = False) -> list[TickStore]:
    """The stores named by ``source`` ("hot", "cold" or "both"), hot first; ``replica``: the hot
    store reads from ``pg_read_url`` when set (verify only reads)."""
    from ...stores.hot import HotStore
    from ...stores.lake import Lake

    if source not in SOURCES:
        raise QueryError(f"source must be hot, cold or both, not {source!r}")
    stores: list[TickStore] = []
    if source in ("hot", "both"):
        stores.append(HotStore(settings, replica=replica))
    if source in ("cold", "both"):
        stores.append(Lake(settings))
    return stores
