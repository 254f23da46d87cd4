"""Hot vs cold, per (venue, symbol, minute), and repair of whichever side misses ticks.

Both stores only ever hold real ticks, so their union is the truth: for a minute whose
fingerprints differ, each side's ticks the other lacks are upserted into the other (by
natural key, idempotent; running it twice adds nothing the second time). When nothing
differs the cost is one aggregate query per store. Reads don't lock the stores and the
writes are ordinary idempotent upserts, so the archivers keep running meanwhile.

A key both stores hold with different trade values (a conflicting duplicate) is never
resolved silently: reconcile names it with both values; ``reconcile --repair`` settles it by the
documented rule — the broker's trade when a broker lists it, else the earliest-received copy —
writes the winner to both stores (rebuilding the hot candles it feeds) and reports each change.
The scheduled reconcile only names conflicts (docs/sync.md, "Conflicting duplicates").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ...core.config import Settings
from ...core.errors import QueryError
from ...core.progress import ProgressFn
from ...core.progress import report as report_progress
from ...core.retention import hot_days
from ...core.wire import NATURAL_KEY, TICK_SCHEMA, conflicting_rows
from ...stores.contract import Reject, TickStore, conform
from . import state
from .integrity import integrity_rows, write_integrity_report
from .report import MinuteDiff, VerifyReport
from .verify import build_report, compare, day_range, open_stores, scan_all

log = logging.getLogger(__name__)
UTC = UTC

#: At most this many minutes of differing data are read into memory at once.
REPAIR_WINDOW_MINUTES = 30
#: Missing ticks are written in upserts of about this many rows.
UPSERT_ROWS = 200_000


@dataclass(frozen=True)
class Conflict:
    """One natural key both stores hold with different trade values (price, volume or side)."""

    venue: str
    symbol: str
    ts: datetime
    cum_volume: int
    hot: dict[str, Any]  # price, volume, side, source, received_at as stored in hot
    cold: dict[str, Any]

    @property
    def preferred(self) -> str:
        """The store whose copy was received first (the documented rule); hot when unknown or equal."""
        hot_at, cold_at = self.hot["received_at"], self.cold["received_at"]
        return "cold" if cold_at is not None and (hot_at is None or cold_at < hot_at) else "hot"

    @property
    def key(self) -> tuple[str, str, datetime, int]:
        return self.venue, self.symbol, self.ts, self.cum_volume

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "symbol": self.symbol, "ts": self.ts.astimezone(UTC).isoformat(), "cum_volume": self.cum_volume,
                "hot": _values_json(self.hot), "cold": _values_json(self.cold), "preferred": self.preferred}


def _values_json(v: Mapping[str, Any]) -> dict[str, Any]:
    return {**v, "price": str(v["price"]), "received_at": v["received_at"].isoformat() if v["received_at"] else None}


#: The broker's (price, volume) of the trades it lists, by natural key (venue, symbol, ts,
#: cum_volume); keys it does not list are absent. Built by services.recovery.settle.
BrokerValues = Callable[[Sequence[Conflict]], Mapping[tuple[str, str, datetime, int], tuple[Decimal, int]]]
#: source of a settled value the broker listed but neither store held (as recovery writes it)
BROKER_SOURCE = "recovery"


@dataclass(frozen=True)
class Settlement:
    """How ``reconcile --repair`` settled one conflicting duplicate."""

    conflict: Conflict
    rule: str  # "broker" (the broker's trade) or "earliest received"
    value: dict[str, Any]  # price, volume, side, source, received_at now stored in both stores
    changed: tuple[str, ...]  # the stores whose row was replaced

    def describe(self) -> str:
        c, v = self.conflict, self.value
        return (f"{c.venue} {c.symbol} {c.ts.isoformat()} cum_volume {c.cum_volume}: kept price {v['price']} volume {v['volume']} "
                f"side {v['side'] or '-'} ({self.rule}); replaced in {', '.join(self.changed)} (hot had {c.hot['price']}/"
                f"{c.hot['volume']}/{c.hot['side'] or '-'}, cold {c.cold['price']}/{c.cold['volume']}/{c.cold['side'] or '-'})")

    def to_dict(self) -> dict[str, Any]:
        return {**self.conflict.to_dict(), "rule": self.rule, "kept": _values_json(self.value), "changed": list(self.changed)}


def _trade(v: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return v["price"], v["volume"], v["side"]


def settle(conflict: Conflict, broker: tuple[Decimal, int] | None, now: datetime) -> Settlement:
    """The documented rule for one conflicting duplicate. The broker's trade wins when known: the
    stored copy carrying its price and volume (brokers list no side; the earliest received when
    both do), else the broker's values as recovery stores them. Without it the earliest-received copy wins."""
    if broker is None:
        value, rule = dict(conflict.hot if conflict.preferred == "hot" else conflict.cold), "earliest received"
    else:
        rule = "broker"
        copies = {name: v for name, v in (("hot", conflict.hot), ("cold", conflict.cold)) if (v["price"], v["volume"]) == broker}
        # both copies carry it when they differ only in side: the earliest received of them
        chosen = copies.get(conflict.preferred) or next(iter(copies.values()), None)
        value = dict(chosen) if chosen is not None else {"price": broker[0], "volume": broker[1], "side": None,
                                                          "source": BROKER_SOURCE, "received_at": now}
    changed = tuple(name for name, v in (("hot", conflict.hot), ("cold", conflict.cold)) if _trade(v) != _trade(value))
    return Settlement(conflict, rule, value, changed)


@dataclass
class ReconcileReport:
    day: date
    differences: list[MinuteDiff]  # found before any repair
    repair: bool
    added_to_hot: int = 0
    added_to_cold: int = 0
    added: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # (venue, symbol) -> {"hot": n, "cold": n}
    conflicts: list[Conflict] = field(default_factory=list)  # keys held by both stores with different values
    settled: list[Settlement] = field(default_factory=list)  # conflicts settled by --repair (each change)
    rejected: list[tuple[str, Reject]] = field(default_factory=list)  # (target store, row) refused by validation, not copied
    after: VerifyReport | None = None  # the state once done (after the repair, if any)
    seconds: float = 0.0
    report_written: dict[str, str] = field(default_factory=dict)  # store -> "ok" or the error

    @property
    def consistent(self) -> bool:
        return self.after is not None and self.after.consistent and not self.unsettled

    @property
    def unsettled(self) -> list[Conflict]:
        done = {s.conflict.key for s in self.settled}
        return [c for c in self.conflicts if c.key not in done]

    def reasons(self) -> list[str]:
        """Why the day is not consistent after the run (empty when it is)."""
        out = self.after.reasons() if self.after is not None else ["no result"]
        if self.unsettled:
            out.append(f"{len(self.unsettled)} conflicting duplicate(s): a key both stores hold with different price/volume/side")
        if self.rejected:
            out.append(f"{len(self.rejected)} row(s) not copied: they break the wire format ({self.rejected[0][1].describe()})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "tickvault.reconcile/1",
            "date": self.day.isoformat(),
            "repair": self.repair,
            "consistent": self.consistent,
            "differences_found": len(self.differences),
            "differences": [d.to_dict() for d in self.differences],
            "added_to_hot": self.added_to_hot,
            "added_to_cold": self.added_to_cold,
            "added": [{"venue": v, "symbol": s, **counts} for (v, s), counts in sorted(self.added.items())],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "settled": [s.to_dict() for s in self.settled],
            "rejected": [{"to": store, "row": reject.describe(), "reason": reject.reason} for store, reject in self.rejected],
            "seconds": round(self.seconds, 3),
            "integrity_report": self.report_written,
            "after": self.after.to_dict() if self.after else None,
        }


def repair_windows(differences: Sequence[MinuteDiff]) -> list[tuple[datetime, datetime, list[str]]]:
    """Differing minutes grouped into [start, end) windows of at most REPAIR_WINDOW_MINUTES,
    each with the symbols that differ in it: few reads, each of bounded size."""
    minutes: dict[datetime, set[str]] = {}
    for d in differences:
        minutes.setdefault(d.minute, set()).add(d.symbol)
    windows: list[tuple[datetime, datetime, list[str]]] = []
    one = timedelta(minutes=1)
    span = one * REPAIR_WINDOW_MINUTES
    start: datetime | None = None
    end: datetime | None = None
    symbols: set[str] = set()
    for minute in sorted(minutes):
        if start is not None and minute + one - start <= span:
            end = minute + one
            symbols |= minutes[minute]
            continue
        if start is not None and end is not None:
            windows.append((start, end, sorted(symbols)))
        start, end, symbols = minute, minute + one, set(minutes[minute])
    if start is not None and end is not None:
        windows.append((start, end, sorted(symbols)))
    return windows


def missing_from(ticks: pa.Table, other: pa.Table) -> pa.Table:
    """Rows of ``ticks`` whose natural key is not in ``other``."""
    if ticks.num_rows == 0 or other.num_rows == 0:
        return ticks
    keys = other.select(list(NATURAL_KEY)).append_column("_present", pa.array([True] * other.num_rows))
    joined = ticks.join(keys, keys=list(NATURAL_KEY), join_type="left outer", use_threads=False)
    new = joined.filter(pa.compute.is_null(joined.column("_present"))).drop_columns(["_present"])
    return new.select(list(TICK_SCHEMA.names)).cast(TICK_SCHEMA)


_VALUE_COLUMNS = ("price", "volume", "side", "source", "received_at")


def conflicts_between(hot_ticks: pa.Table, cold_ticks: pa.Table) -> list[Conflict]:
    """Keys both tables hold with different trade values, with each side's values."""
    out = []
    for h, c in conflicting_rows(hot_ticks, cold_ticks):
        hot_row, cold_row = hot_ticks.slice(h, 1).to_pylist()[0], cold_ticks.slice(c, 1).to_pylist()[0]
        out.append(Conflict(hot_row["venue"], hot_row["symbol"], hot_row["ts"], hot_row["cum_volume"],
                            {k: hot_row[k] for k in _VALUE_COLUMNS}, {k: cold_row[k] for k in _VALUE_COLUMNS}))
    return out


def settle_conflicts(hot: TickStore, cold: TickStore, report: ReconcileReport, broker_values: BrokerValues | None) -> None:
    """Write each conflict's winner (``settle``) into the store(s) holding the other value; every
    change is logged and listed under ``settled``."""
    if not report.conflicts:
        return
    known = broker_values(report.conflicts) if broker_values is not None else {}
    now = datetime.now(UTC)
    settlements = [settle(c, known.get(c.key), now) for c in report.conflicts]
    for store in (hot, cold):
        rows = [{"venue": s.conflict.venue, "symbol": s.conflict.symbol, "ts": s.conflict.ts, "cum_volume": s.conflict.cum_volume,
                 **s.value} for s in settlements if store.name in s.changed]
        if not rows:
            continue
        checked = conform(pa.Table.from_pylist(rows, schema=TICK_SCHEMA))
        report.rejected.extend((store.name, reject) for reject in checked.rejects)
        store.replace(checked.table)
    refused = {(r.row["venue"], r.row["symbol"], r.row["ts"], r.row["cum_volume"]) for _, r in report.rejected if r.row}
    for s in settlements:
        if s.conflict.key in refused:
            continue
        report.settled.append(s)
        log.warning("reconcile: settled conflicting duplicate %s", s.describe())


def compare_ticks(hot: TickStore, cold: TickStore, differences: Sequence[MinuteDiff], report: ReconcileReport, repair: bool) -> None:
    """Read the differing minutes of both stores: name the conflicting keys and (``repair``) copy
    each side's missing ticks from the other side.

    Reads window by window; writes in few large upserts (each upsert is a transaction, and
    a lake commit has a fixed cost).
    """
    pending: dict[str, list[pa.Table]] = {"hot": [], "cold": []}

    def flush(store: TickStore) -> None:
        tables = pending[store.name]
        if not tables:
            return
        batch = pa.concat_tables(tables)
        pending[store.name] = []
        added = store.upsert(batch, why="reconcile")
        if store.name == "hot":
            report.added_to_hot += added
        else:
            report.added_to_cold += added

    for start, end, symbols in repair_windows(differences):
        hot_ticks = hot.read_ticks(start, end, symbols)
        cold_ticks = cold.read_ticks(start, end, symbols)
        report.conflicts.extend(conflicts_between(hot_ticks, cold_ticks))
        if not repair:
            continue
        for store, table in ((hot, missing_from(cold_ticks, hot_ticks)), (cold, missing_from(hot_ticks, cold_ticks))):
            if not table.num_rows:
                continue
            checked = conform(table)  # a row edited into one store by hand must not spread to the other
            report.rejected.extend((store.name, reject) for reject in checked.rejects)
            table = checked.table
            if not table.num_rows:
                continue
            pending[store.name].append(table)
            counts = table.group_by(["venue", "symbol"]).aggregate([("symbol", "count")])
            series = zip(counts.column("venue").to_pylist(), counts.column("symbol").to_pylist())
            for key, n in zip(series, counts.column("symbol_count").to_pylist()):
                per = report.added.setdefault(key, {"hot": 0, "cold": 0})
                per[store.name] += n
            if sum(t.num_rows for t in pending[store.name]) >= UPSERT_ROWS:
                flush(store)
    flush(hot)
    flush(cold)
    for c in report.conflicts[:5]:
        log.warning("reconcile: conflicting duplicate %s %s %s cum_volume %d: hot price %s volume %s side %s, cold price %s "
                    "volume %s side %s (the %s copy was received first)", c.venue, c.symbol,
                    c.ts.isoformat(), c.cum_volume, c.hot["price"], c.hot["volume"], c.hot["side"], c.cold["price"],
                    c.cold["volume"], c.cold["side"], c.preferred)
    for target, reject in report.rejected[:5]:
        log.warning("reconcile: not copied to %s, it breaks the wire format: %s", target, reject.describe())
    if repair:
        log.info("reconcile: %d ticks copied to hot, %d to cold", report.added_to_hot, report.added_to_cold)


def reconcile(
    settings: Settings,
    day: date,
    repair: bool = False,
    *,
    symbols: Sequence[str] | None = None,
    until: datetime | None = None,
    write_report: bool = True,
    stores: tuple[TickStore, TickStore] | None = None,
    on_progress: ProgressFn | None = None,
    settle_conflicts_too: bool = False,
    broker_values: BrokerValues | None = None,
) -> ReconcileReport:
    """Compare hot and cold for one KST day; with ``repair`` copy missing ticks both ways, and
    with ``settle_conflicts_too`` (``reconcile --repair``) settle conflicting duplicates too, by
    the broker's trades (``broker_values``) when given, else by the earliest-received copy.

    ``until`` cuts the day (the scheduler leaves the last minutes to the archivers). After
    the run a row per (day, venue, symbol) goes to both stores' ``integrity_report``.
    """
    window = hot_days(settings, datetime.now(UTC))
    if not window.holds(day):
        raise QueryError(
            f"{day} is not held in full by the hot store (tick_retention_days={settings.tick_retention_days}, "
            f"first full day: {window.oldest_day + timedelta(days=1)}); only the lake holds it — use `tickvault verify --date {day} --source cold`"
        )
    started = time.perf_counter()
    start, end = day_range(day, until)
    hot, cold = stores if stores is not None else open_stores(settings, "both")
    try:
        steps = 4  # scan, compare and copy, scan again, write the report
        report_progress(on_progress, 0, steps)
        scans = scan_all([hot, cold], start, end, symbols)
        report_progress(on_progress, 1, steps)
        differences = compare(*scans)
        report = ReconcileReport(day, differences, repair)
        if differences:
            compare_ticks(hot, cold, differences, report, repair)
        if repair and settle_conflicts_too:
            settle_conflicts(hot, cold, report, broker_values)
        if repair and differences:
            report_progress(on_progress, 2, steps)
            scans = scan_all([hot, cold], start, end, symbols)
        report_progress(on_progress, 3, steps)
        report.after = build_report(day, "both", symbols, [hot, cold], scans, start, end)
        report.seconds = time.perf_counter() - started
        if write_report:
            rows = integrity_rows(report.after, scans, report.added)
            report.report_written = write_integrity_report(hot, cold, day, rows)
        report.seconds = time.perf_counter() - started
        report_progress(on_progress, steps, steps)
        state.record_reconcile(
            report.consistent, len(differences), report.added_to_hot + report.added_to_cold, report.seconds
        )
        log.info(
            "reconcile %s: %d differing minute(s), %d ticks added to hot, %d to cold, %s in %.2fs",
            day, len(differences), report.added_to_hot, report.added_to_cold,
            "consistent" if report.consistent else "NOT consistent: " + "; ".join(report.reasons()),
            report.seconds,
        )
        return report
    finally:
        if stores is None:
            hot.close()
            cold.close()

