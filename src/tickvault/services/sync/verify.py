"""Continuity proof of one KST trading day, per store and across both.

Per symbol, sorted by cumulative volume, every tick must satisfy
``cum_volume[i] - cum_volume[i-1] == volume[i]`` (the first: ``cum_volume == volume``).
Each store answers one aggregate query per (symbol, minute) that carries the continuity
breaks too, so a clean day costs one query per store; the tick-level break list is only
fetched when a break exists. Hot-vs-cold differences come from comparing the per-minute
fingerprints (count, volume, max cumulative volume, checksum of natural keys).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from ...core.config import Settings
from ...core.wire import kst_day_bounds
from .gaps import LastTick, union_gaps
from .report import Duplicate, Gap, MinuteDiff, MinuteStats, StoreCheck, VerifyReport
from .sides import Side, open_sides, store_errors

log = logging.getLogger(__name__)
UTC = timezone.utc
SOURCES = ("hot", "cold", "both")

MinuteKey = tuple[str, int]  # (symbol, epoch minute)


@dataclass
class SideScan:
    """One store's per-minute fingerprint of the range, and what it says about continuity."""

    check: StoreCheck
    minutes: dict[MinuteKey, MinuteStats] = field(default_factory=dict)
    breaks: int = 0
    breaks_by_symbol: dict[str, int] = field(default_factory=dict)
    duplicates_by_symbol: dict[str, int] = field(default_factory=dict)
    last: dict[str, LastTick] = field(default_factory=dict)


def minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def day_range(day: date, until: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the KST day, cut at ``until`` (a reconcile of today skips the last minutes)."""
    start, end = kst_day_bounds(day)
    if until is not None:
        end = max(start, min(end, until))
    return start, end


def scan(side: Side, start: datetime, end: datetime, symbols: Sequence[str] | None) -> SideScan:
    """One aggregate query; a store that cannot be read gives a scan with ``check.error`` set."""
    result = SideScan(StoreCheck(side.name))
    try:
        rows = side.rows("minutes", start, end, symbols)
    except store_errors() as exc:  # a down store is reported, not a crash
        log.error("sync: cannot read the %s store (%s: %s)", side.name, type(exc).__name__, exc)
        result.check.error = describe_error(side, exc)
        return result
    names: set[str] = set()
    for row in rows:
        stats = MinuteStats(int(row["ticks"]), int(row["volume"]), int(row["max_cum_volume"]), int(row["checksum"]))
        result.minutes[(row["symbol"], int(row["minute"]))] = stats
        names.add(row["symbol"])
        result.check.ticks += stats.ticks
        result.check.volume += stats.volume
        duplicates = int(row["duplicates"])
        if duplicates:
            result.check.duplicates += duplicates
            result.duplicates_by_symbol[row["symbol"]] = result.duplicates_by_symbol.get(row["symbol"], 0) + duplicates
        breaks = int(row["breaks"])
        if breaks:
            result.breaks += breaks
            result.breaks_by_symbol[row["symbol"]] = result.breaks_by_symbol.get(row["symbol"], 0) + breaks
    result.check.symbols = len(names)
    return result


def describe_error(side: Side, exc: BaseException) -> str:
    """One line for the report: what failed and what the operator should do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if type(exc).__name__ == "UndefinedTable" or "does not exist" in text:
        return f"the {side.name} store has no tick table ({text}); run `tickvault init`"
    return f"{type(exc).__name__}: {text} — check that the {side.name} store is up; sync retries on its next run"


def scan_all(sides: Sequence[Side], start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[SideScan]:
    """Scan the stores at the same time (each query runs inside its own engine, off the GIL)."""
    if len(sides) == 1:
        return [scan(sides[0], start, end, symbols)]
    with ThreadPoolExecutor(max_workers=len(sides), thread_name_prefix="tickvault-sync-scan") as pool:
        return list(pool.map(lambda side: scan(side, start, end, symbols), sides))


def add_details(side: Side, result: SideScan, start: datetime, end: datetime, symbols: Sequence[str] | None) -> None:
    """Tick-level breaks, each symbol's last tick and duplicate samples (only where needed)."""
    if result.check.error:
        return
    try:
        for row in side.rows("breaks", start, end, symbols):
            if int(row["missing"]) != 0:
                result.check.gaps.append(
                    Gap(
                        symbol=row["symbol"],
                        start_ts=_utc(row["prev_ts"]),
                        start_cum_volume=int(row["prev_cum_volume"]),
                        end_ts=_utc(row["ts"]),
                        end_cum_volume=int(row["cum_volume"]),
                        end_volume=int(row["volume"]),
                        missing_volume=int(row["missing"]),
                    )
                )
            if row["is_last"]:
                result.last[row["symbol"]] = LastTick(row["symbol"], _utc(row["ts"]), int(row["cum_volume"]))
        if result.check.duplicates:
            result.check.duplicate_samples = [
                Duplicate(r["symbol"], _utc(r["ts"]), int(r["cum_volume"]), int(r["copies"]))
                for r in side.rows("duplicates", start, end, symbols)
            ]
    except store_errors() as exc:
        log.error("sync: cannot read the %s store's breaks (%s: %s)", side.name, type(exc).__name__, exc)
        result.check.error = describe_error(side, exc)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def compare(hot: SideScan, cold: SideScan) -> list[MinuteDiff]:
    """Minutes whose fingerprints differ (or exist on one side only)."""
    if hot.check.error or cold.check.error:
        return []
    out: list[MinuteDiff] = []
    for key in sorted(hot.minutes.keys() | cold.minutes.keys()):
        h, c = hot.minutes.get(key), cold.minutes.get(key)
        if h != c:
            out.append(MinuteDiff(key[0], minute_start(key[1]), h, c))
    return out


def build_report(
    day: date,
    source: str,
    symbols: Sequence[str] | None,
    sides: Sequence[Side],
    scans: Sequence[SideScan],
    start: datetime,
    end: datetime,
) -> VerifyReport:
    """Fetch break details where any store has breaks, then assemble the report."""
    any_breaks = any(s.breaks for s in scans)
    for side, result in zip(sides, scans):
        if result.breaks or result.check.duplicates or (any_breaks and len(scans) > 1):
            add_details(side, result, start, end, symbols)
    readable = [s for s in scans if not s.check.error]
    if not any_breaks:
        gaps: list[Gap] = []
    elif len(readable) == 1:
        gaps = [g for g in readable[0].check.gaps if g.missing_volume > 0]
    else:
        gaps = union_gaps({s.check.store: s.check.gaps for s in readable}, {s.check.store: s.last for s in readable})
    differences = compare(scans[0], scans[1]) if len(scans) == 2 else []
    return VerifyReport(
        day=day,
        source=source,
        symbols=list(symbols) if symbols else None,
        stores={s.check.store: s.check for s in scans},
        gaps=gaps,
        differences=differences,
    )


def verify(
    settings: Settings,
    day: date,
    symbols: Sequence[str] | None = None,
    source: str = "both",
    *,
    until: datetime | None = None,
    sides: Sequence[Side] | None = None,
) -> VerifyReport:
    """Continuity, duplicates and (source "both") hot-vs-cold differences of one KST day."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    start, end = day_range(day, until)
    own = sides is None
    opened = list(sides) if sides is not None else open_sides(settings, source)
    try:
        scans = scan_all(opened, start, end, symbols)
        return build_report(day, source, symbols, opened, scans, start, end)
    finally:
        if own:
            for side in opened:
                side.close()
