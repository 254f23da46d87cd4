"""The integrity report: one row per (date, venue, symbol) in both stores after every reconcile.

The same rows go to both stores' ``integrity_report`` (so either store alone still tells the
day's story). Repair counts accumulate over the day's runs; everything else is the latest state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from ...core.errors import StoreError
from ...stores.contract import TickStore
from .report import VerifyReport

log = logging.getLogger(__name__)
UTC = UTC

def status_of(row: dict[str, Any], differs: bool) -> str:
    """ok | repaired | gaps | differs | duplicates — the worst thing true of the (venue, symbol)
    (``integrity_rows`` adds "missing": in the day's universe, no tick in any store)."""
    if row["duplicates"]:
        return "duplicates"
    if differs:
        return "differs"
    if row["gaps"]:
        return "gaps"
    if row["repaired_hot"] or row["repaired_cold"]:
        return "repaired"
    return "ok"


def integrity_rows(after: VerifyReport, scans: Sequence[Any], added: dict[tuple[str, str], dict[str, int]]) -> list[dict[str, Any]]:
    """Rows for the report from the final scans. ticks/volume: the larger of the two stores
    (equal once consistent); gaps: gaps of the union (trades neither store holds); a pair of the
    day's universe no store holds a tick of gets a row with status "missing"."""
    per: dict[tuple[str, str], dict[str, Any]] = {}

    def row_of(venue: str, symbol: str) -> dict[str, Any]:
        return per.setdefault((venue, symbol), _empty(after.day, venue, symbol, after.checked_at))

    for result in scans:
        totals: dict[tuple[str, str], list[int]] = {}
        for (venue, symbol, _minute), stats in result.minutes.items():
            t = totals.setdefault((venue, symbol), [0, 0])
            t[0] += stats.ticks
            t[1] += stats.volume
        for (venue, symbol), (ticks, volume) in totals.items():
            row = row_of(venue, symbol)
            row["ticks"] = max(row["ticks"], ticks)
            row["volume"] = max(row["volume"], volume)
        for (venue, symbol), n in result.duplicates_by_series.items():
            row_of(venue, symbol)["duplicates"] += n
    for gap in after.gaps:
        row = row_of(gap.venue, gap.symbol)
        row["gaps"] += 1
        row["missing_volume"] += gap.missing_volume
    for (venue, symbol), counts in added.items():
        row = row_of(venue, symbol)
        row["repaired_hot"] += counts.get("hot", 0)
        row["repaired_cold"] += counts.get("cold", 0)
    for venue, symbol in after.silent:
        row_of(venue, symbol)
    differing = {(d.venue, d.symbol) for d in after.differences}
    missing = set(after.silent)
    for series, row in per.items():
        row["status"] = "missing" if series in missing else status_of(row, series in differing)
    return [per[key] for key in sorted(per, key=lambda k: (k[1], k[0]))]


def _empty(day: date, venue: str, symbol: str, checked_at: datetime) -> dict[str, Any]:
    return {
        "day": day, "venue": venue, "symbol": symbol, "ticks": 0, "volume": 0, "gaps": 0, "missing_volume": 0, "duplicates": 0,
        "repaired_hot": 0, "repaired_cold": 0, "status": "ok", "checked_at": checked_at,
    }


def write_integrity_report(hot: TickStore, cold: TickStore, day: date, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Write the rows to both stores; a store that is down is reported, not fatal."""
    result: dict[str, str] = {}
    if not rows:
        return {"hot": "no rows", "cold": "no rows"}
    for store in (hot, cold):
        try:
            store.write_integrity_report(rows)
            result[store.name] = "ok"
        except StoreError as exc:
            log.error("integrity report for %s not written to the %s store: %s", day, store.name, exc)
            result[store.name] = f"{type(exc).__name__}: {exc}"
    return result
