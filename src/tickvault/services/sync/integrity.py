"""The integrity report: one row per (date, symbol) in both stores after every reconcile.

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
    """ok | repaired | gaps | differs | duplicates — the worst thing true of the symbol."""
    if row["duplicates"]:
        return "duplicates"
    if differs:
        return "differs"
    if row["gaps"]:
        return "gaps"
    if row["repaired_hot"] or row["repaired_cold"]:
        return "repaired"
    return "ok"


def integrity_rows(after: VerifyReport, scans: Sequence[Any], added_by_symbol: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Rows for the report from the final scans. ticks/volume: the larger of the two stores
    (equal once consistent); gaps: gaps of the union (trades neither store holds)."""
    per: dict[str, dict[str, Any]] = {}
    for result in scans:
        totals: dict[str, list[int]] = {}
        for (symbol, _minute), stats in result.minutes.items():
            t = totals.setdefault(symbol, [0, 0])
            t[0] += stats.ticks
            t[1] += stats.volume
        for symbol, (ticks, volume) in totals.items():
            row = per.setdefault(symbol, _empty(after.day, symbol, after.checked_at))
            row["ticks"] = max(row["ticks"], ticks)
            row["volume"] = max(row["volume"], volume)
        for symbol, n in result.duplicates_by_symbol.items():
            per.setdefault(symbol, _empty(after.day, symbol, after.checked_at))["duplicates"] += n
    for gap in after.gaps:
        row = per.setdefault(gap.symbol, _empty(after.day, gap.symbol, after.checked_at))
        row["gaps"] += 1
        row["missing_volume"] += gap.missing_volume
    for symbol, added in added_by_symbol.items():
        row = per.setdefault(symbol, _empty(after.day, symbol, after.checked_at))
        row["repaired_hot"] += added.get("hot", 0)
        row["repaired_cold"] += added.get("cold", 0)
    differing = {d.symbol for d in after.differences}
    for symbol, row in per.items():
        row["status"] = status_of(row, symbol in differing)
    return [per[s] for s in sorted(per)]


def _empty(day: date, symbol: str, checked_at: datetime) -> dict[str, Any]:
    return {
        "day": day, "symbol": symbol, "ticks": 0, "volume": 0, "gaps": 0, "missing_volume": 0, "duplicates": 0,
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
