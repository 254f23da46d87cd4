"""The recovery report: per (venue, symbol) what was found, recovered and what is still wrong, and why.

One run compares one venue. Stored twice: as JSON in the lake directory
(``recovery/<date>-<broker>.json`` for KRX, ``<date>-<broker>-nxt.json`` for NXT, next to the
data it vouches for) and one row per (venue, symbol) in the hot table ``recovery_report``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

RECOVERY_FORMAT = "tickvault.recovery/1"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class Disagreement:
    """A minute where the broker's bar volume and the archive's volume still differ."""

    minute: datetime
    broker_volume: int
    archive_volume: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"minute": _iso(self.minute), "broker_volume": self.broker_volume, "archive_volume": self.archive_volume, "reason": self.reason}


@dataclass
class SymbolReport:
    symbol: str
    venue: str = "KRX"  # the venue whose trades of the symbol were compared
    ticks_before: int = 0  # in either store (the union)
    lake_ticks_before: int = 0
    hot_ticks_before: int = 0  # 0 when the day is outside the hot retention
    ticks_after: int = 0
    volume_before: int = 0
    volume_after: int = 0
    gaps_found: int = 0
    missing_volume_found: int = 0
    minutes_disagreeing: int = 0
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    collector_gaps: list[tuple[datetime, datetime]] = field(default_factory=list)  # recorded in <stream>:gaps
    ticks_recovered: int = 0
    volume_recovered: int = 0
    copied_to_hot: int = 0
    copied_to_lake: int = 0
    gaps_left: int = 0
    missing_volume_left: int = 0
    conflicts: int = 0
    still_disagreeing: list[Disagreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and not self.gaps_left and not self.still_disagreeing and not self.conflicts

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if not self.complete:
            return "incomplete"
        if self.ticks_recovered or self.copied_to_hot or self.copied_to_lake:
            return "repaired"
        return "complete"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        out["complete"] = self.complete
        out["windows"] = [[_iso(a), _iso(b)] for a, b in self.windows]
        out["collector_gaps"] = [[_iso(a), _iso(b)] for a, b in self.collector_gaps]
        out["still_disagreeing"] = [d.to_dict() for d in self.still_disagreeing]
        return out


@dataclass
class RecoveryReport:
    day: date
    broker: str
    dry_run: bool
    hot_in_retention: bool
    started_at: datetime
    finished_at: datetime | None = None
    symbols: list[SymbolReport] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    verify_before: dict[str, Any] | None = None
    verify_after: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    venue: str = "KRX"  # the venue whose trades this run compared with the broker

    @property
    def complete(self) -> bool:
        final = self.verify_after if self.verify_after is not None else self.verify_before
        verified = final is not None and bool(final.get("consistent"))
        return verified and all(s.complete for s in self.symbols) and not self.notes_blocking

    @property
    def notes_blocking(self) -> bool:
        return any(n.startswith("error:") for n in self.notes)

    def reasons(self) -> list[str]:
        out = [n[len("error: "):] for n in self.notes if n.startswith("error:")]
        bad = [s for s in self.symbols if not s.complete]
        if bad:
            out.append(f"{len(bad)} symbol(s) not complete: " + ", ".join(f"{s.symbol} ({s.status})" for s in bad[:10]))
        final = self.verify_after if self.verify_after is not None else self.verify_before
        if final is not None and not final.get("consistent"):
            out.append("verify: " + "; ".join(final.get("reasons") or ["not consistent"]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECOVERY_FORMAT,
            "date": self.day.isoformat(),
            "broker": self.broker,
            "venue": self.venue,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "reasons": self.reasons(),
            "hot_in_retention": self.hot_in_retention,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "calls": self.calls,
            "totals": {
                "symbols": len(self.symbols),
                "gaps_found": sum(s.gaps_found for s in self.symbols),
                "ticks_recovered": sum(s.ticks_recovered for s in self.symbols),
                "volume_recovered": sum(s.volume_recovered for s in self.symbols),
                "copied_to_hot": sum(s.copied_to_hot for s in self.symbols),
                "copied_to_lake": sum(s.copied_to_lake for s in self.symbols),
            },
            "verify_before": self.verify_before,
            "verify_after": self.verify_after,
            "notes": self.notes,
            "symbols": [s.to_dict() for s in self.symbols],
        }

    def render(self) -> str:
        """Plain-text table for a terminal or a log."""
        state = "COMPLETE" if self.complete else "NOT COMPLETE"
        head = (f"recovery {self.day} {self.venue} via {self.broker}{' (dry run)' if self.dry_run else ''}: {state}; "
                f"broker calls {self.calls.get('total', 0)}")
        cols = (f"{'venue':<5} {'symbol':<8} {'ticks before':>12} {'after':>8} {'gaps':>5} {'missing vol':>11} {'recovered':>10} {'rec vol':>9} "
                f"{'to hot':>7} {'to lake':>7} {'disagree':>8}  status")
        lines = [head, cols]
        for s in self.symbols:
            lines.append(
                f"{s.venue:<5} {s.symbol:<8} {s.ticks_before:>12} {s.ticks_after:>8} {s.gaps_found:>5} {s.missing_volume_found:>11} "
                f"{s.ticks_recovered:>10} {s.volume_recovered:>9} {s.copied_to_hot:>7} {s.copied_to_lake:>7} {len(s.still_disagreeing):>8}  {s.status}"
            )
            for d in s.still_disagreeing[:5]:
                lines.append(f"    {d.minute:%H:%M} broker {d.broker_volume} archive {d.archive_volume}: {d.reason}")
            if len(s.still_disagreeing) > 5:
                lines.append(f"    … {len(s.still_disagreeing) - 5} more minute(s)")
            for note in s.notes + ([s.error] if s.error else []):
                lines.append(f"    {note}")
        for reason in self.reasons():
            lines.append(f"! {reason}")
        return "\n".join(lines)


# ---------------------------------------------------------------- storage
def report_path(lake_dir: Path, day: date, broker: str, venue: str = "KRX") -> Path:
    """``recovery/<date>-<broker>.json`` for KRX (as before venues), ``…-<broker>-nxt.json`` for NXT."""
    suffix = "" if venue == "KRX" else f"-{venue.lower()}"
    return Path(lake_dir) / "recovery" / f"{day.isoformat()}-{broker}{suffix}.json"


def write_json(report: RecoveryReport, lake_dir: Path) -> Path:
    """Atomic write: a reader never sees half a report."""
    path = report_path(lake_dir, report.day, report.broker, report.venue)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".report-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(report.to_dict(), handle, indent=2, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def report_rows(report: RecoveryReport) -> list[dict[str, Any]]:
    """One row per (day, broker, venue, symbol) for the hot store's ``recovery_report`` table."""
    ran_at = report.finished_at or datetime.now(UTC)
    return [
        {
            "day": report.day, "broker": report.broker, "venue": report.venue, "symbol": s.symbol, "status": s.status,
            "complete": s.complete,
            "ticks_before": s.ticks_before, "ticks_after": s.ticks_after, "gaps_found": s.gaps_found,
            "ticks_recovered": s.ticks_recovered, "volume_recovered": s.volume_recovered,
            "minutes_disagreeing": len(s.still_disagreeing), "detail": json.dumps(s.to_dict(), ensure_ascii=False), "ran_at": ran_at,
        }
        for s in report.symbols
    ]
