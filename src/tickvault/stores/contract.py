"""The one contract both stores implement: what the archiver, sync, recovery and queries may ask.

The hot store (``stores.hot.HotStore``, PostgreSQL or TimescaleDB) and the lake
(``stores.lake.Lake``, DuckLake) implement :class:`TickStore` directly — no adapters. Every
other package asks a store a named question (``minute_fingerprints``, ``breaks``, ``bounds`` …)
and never writes SQL against a store's tables itself.

Batches are Arrow tables of ``core.wire.TICK_SCHEMA``. ``conform`` is the one place a table from
outside the stream path (another store, recovery, a user) is checked and cast to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

from ..core.bars import Session, VenueChoice
from ..core.errors import InvalidTick
from ..core.timeframe import Timeframe
from ..core.wire import (
    DEFAULT_VENUE,
    TICK_SCHEMA,
    Venue,
    conflicting_rows,
    dedupe,
    describe_key,
    describe_trade,
    table_problems,
)

log = logging.getLogger(__name__)
StoreName = Literal["hot", "cold"]


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """The stream entry a batch ends with: committed with the batch, in the same transaction.

    Meaning in both stores: the highest stream id of a batch this store committed for the group.
    An audit marker for status and rebuild, not a skip filter: with several consumers and
    XAUTOCLAIM, ids do not arrive in order, so a lower id may still be pending.
    """

    stream: str
    group: str
    last_id: str


@dataclass(frozen=True, slots=True)
class MinuteFingerprint:
    """One (venue, symbol, minute) of a store: enough to tell two stores' minutes apart cheaply."""

    venue: str
    symbol: str
    minute: int  # epoch minute (UTC)
    ticks: int
    volume: int
    max_cum_volume: int
    checksum: int
    duplicates: int  # extra copies of a natural key (the lake has no unique constraint)
    breaks: int  # ticks whose cum_volume step differs from their volume
    missing_volume: int


@dataclass(frozen=True, slots=True)
class Break:
    """A continuity break of one (venue, symbol) in cum_volume order, or its last tick (``is_last``)."""

    venue: str
    symbol: str
    prev_ts: datetime | None
    prev_cum_volume: int
    ts: datetime
    cum_volume: int
    volume: int
    missing: int
    is_last: bool


@dataclass(frozen=True, slots=True)
class Bounds:
    ticks: int
    first_ts: datetime | None
    last_ts: datetime | None


@dataclass(frozen=True, slots=True)
class KeyCopies:
    venue: str
    symbol: str
    ts: datetime
    cum_volume: int
    copies: int


@runtime_checkable
class TickStore(Protocol):
    """Implemented by ``HotStore`` and ``Lake``."""

    name: StoreName

    # --- lifecycle
    def init(self) -> None:
        """Create or upgrade the store; idempotent (``tickvault init`` and the archivers)."""

    def close(self) -> None:
        """Release connections."""

    # --- writes
    def write(self, batch: pa.Table, position: StreamPosition | None = None) -> int:
        """Durably add the batch's ticks not stored yet, with ``position`` in the same transaction.

        ``batch`` is conformed and free of duplicate keys (the archiver's decode made it so).
        Returns the rows actually added; raises on any failure, leaving nothing of it visible.
        """

    def upsert(self, ticks: pa.Table, why: str = "upsert") -> int:
        """Add ticks from another store, recovery or a user: conformed and deduplicated here
        (``why``: "reconcile", "recovery", "rebuild", … — the lake's snapshot says it)."""

    def replace(self, ticks: pa.Table) -> int:
        """Store ``ticks`` (conformed, one row per key) in place of the rows holding their natural
        keys, and what derives from them: only ``reconcile --repair`` settling conflicting duplicates."""

    def checkpoint(self, stream: str, group: str) -> str | None:
        """The last ``StreamPosition.last_id`` committed for (stream, group)."""

    # --- reads
    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None,
                   venue: Venue | None = None) -> pa.Table:
        """Ticks with start <= ts < end (of one venue, or both) as TICK_SCHEMA, ordered by symbol,
        venue, trading date, cum_volume."""

    def candles(self, tf: Timeframe | str, start: datetime, end: datetime, symbols: Sequence[str] | None = None,
                session: Session = "regular", venue: VenueChoice = "ALL") -> pa.Table:
        """Bars of ``CANDLE_SCHEMA`` computed from the ticks by the store's candle SQL (``core.bars``)."""

    def rows_with_keys(self, batch: pa.Table) -> pa.Table:
        """The stored rows (TICK_SCHEMA) holding any natural key of ``batch`` (conflict checks)."""

    def has_ticks(self, start: datetime, end: datetime) -> bool:
        """Whether any tick lies in [start, end) (cheap: stops at the first row)."""

    def symbols_of_day(self, day: date) -> list[tuple[str, str]]:
        """(venue, symbol) pairs with at least one tick on this KST trading date, sorted by symbol."""

    def count_ticks(self, day: date) -> int:
        """Ticks of one KST trading date."""

    # --- the questions sync and recovery ask
    def minute_fingerprints(self, start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[MinuteFingerprint]: ...

    def breaks(self, start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[Break]: ...

    def duplicate_keys(self, start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[KeyCopies]: ...

    def bounds(self, start: datetime, end: datetime, symbols: Sequence[str] | None) -> Bounds: ...

    def write_integrity_report(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def read_integrity_report(self, day: date) -> list[dict[str, Any]]: ...

    def write_universe(self, day: date, pairs: Sequence[tuple[str, str]], source: str) -> None:
        """The (venue, symbol) pairs that should trade on ``day``, replacing that day's list."""

    def read_universe(self, day: date) -> list[tuple[str, str]]:
        """The day's universe as stored (empty when none was recorded)."""


@dataclass(frozen=True, slots=True)
class Reject:
    """A row refused by ``conform``: its values and the wire-format rule it breaks."""

    row: dict[str, Any]
    reason: str

    def describe(self) -> str:
        r = self.row
        return f"{r['venue']} {r['symbol']} ts {r['ts']} cum_volume {r['cum_volume']}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Conformed:
    table: pa.Table  # TICK_SCHEMA, valid rows only, one per natural key
    rejects: list[Reject]


def conform(table: pa.Table, now: datetime | None = None) -> Conformed:
    """``table`` as exactly TICK_SCHEMA with one row per natural key (the first wins), and the rows
    the wire format refuses (``core.wire.table_problems``: the archivers' rules) set apart.

    A table without a ``venue`` column is KRX's, as a wire entry without one is. Raises
    InvalidTick naming the column when a column is missing, null where it must be set, or of a
    type that cannot be stored exactly.
    """
    if "venue" not in table.column_names:
        table = table.append_column("venue", pa.array([DEFAULT_VENUE] * table.num_rows, pa.string()))
    missing = [name for name in TICK_SCHEMA.names if name not in table.column_names]
    if missing:
        raise InvalidTick(f"tick batch lacks column(s) {', '.join(missing)}; build it with tickvault.TICK_SCHEMA")
    columns = []
    for field in TICK_SCHEMA:
        column = table.column(field.name)
        if not field.nullable and column.null_count:
            raise InvalidTick(f"tick batch has {column.null_count} null(s) in {field.name}, which must be set")
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise InvalidTick(f"tick batch column {field.name}: cannot store {column.type} as {field.type} ({exc})") from None
    conformed = pa.Table.from_arrays(columns, schema=TICK_SCHEMA)
    problems = table_problems(conformed, now)
    bad = [i for i, problem in enumerate(problems) if problem is not None]
    if not bad:
        return Conformed(dedupe(conformed), [])
    rejects = [Reject(conformed.slice(i, 1).to_pylist()[0], problems[i] or "") for i in bad]
    keep = pa.array([problem is None for problem in problems])
    return Conformed(dedupe(conformed.filter(keep)), rejects)


def report_conflicts(store: TickStore, batch: pa.Table, added: int) -> int:
    """After an upsert of ``batch`` that added ``added`` rows: log the rows not stored because the
    store holds their key with another price, volume or side (the stored value stays); their count."""
    if added >= batch.num_rows:
        return 0
    stored = store.rows_with_keys(batch)
    pairs = conflicting_rows(batch, stored)
    if pairs:
        log.warning("%s: %d row(s) not stored: the store holds their key with other values, which stay "
                    "(docs/sync.md, conflicting duplicates): %s", store.name, len(pairs),
                    "; ".join(f"{describe_key(batch, i)} {describe_trade(stored, k)} kept, {describe_trade(batch, i)} not stored"
                              for i, k in pairs[:5]))
    return len(pairs)


def report_rejects(store: str, rejects: Sequence[Reject]) -> None:
    """Log the rows a copy into ``store`` refused (a count and the first few, each with its rule)."""
    if rejects:
        log.warning("%s: %d row(s) refused by validation and not stored: %s", store, len(rejects),
                    "; ".join(r.describe() for r in rejects[:5]))
