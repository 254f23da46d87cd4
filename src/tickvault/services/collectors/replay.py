"""Replay a day of the lake into a (separate) stream, at the pace it happened or faster:
for paper trading, load tests and demos.

Ticks keep everything they had — symbol, ts, price, volumes, side, **source** and
received_at — so an installation archiving the replay stream stores rows identical to
the original (same natural keys, same values). Pass ``source="replay"`` to relabel them
when consumers must tell a replay from live data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from ...core.stream import Publisher
from ...core.wire import WireEncoder


def parse_speed(text: str) -> float | None:
    """'1' real time, '10' ten times faster, 'max' as fast as Redis takes it (None)."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"speed must be a positive number or 'max', got {text!r}") from None
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {text!r}")
    return speed


def in_time_order(table: pa.Table) -> pa.Table:
    """Trade order across symbols: by ts, and within a second by cum_volume per symbol."""
    if table.num_rows == 0:
        return table
    return table.take(pc.sort_indices(table, [("ts", "ascending"), ("symbol", "ascending"), ("cum_volume", "ascending")]))


def wire_rows(table: pa.Table, source: str | None = None) -> Iterator[tuple[datetime, dict[str, str]]]:
    """(ts, wire fields) per row, a record batch at a time (no million-object lists)."""
    for batch in table.to_batches(max_chunksize=10_000):
        part = pa.Table.from_batches([batch])
        encoder = WireEncoder(part, source)
        for i, ts in enumerate(part.column("ts").to_pylist()):
            yield ts, encoder.fields(i)


def replay(
    table: pa.Table,
    publisher: Publisher,
    speed: float | None = 1.0,
    source: str | None = None,
    stop_event: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Publish ``table`` (TICK_SCHEMA) in time order; ticks of one second go out together,
    each second ``elapsed_trade_time / speed`` after the first. Returns ticks published."""
    stop_event = stop_event or threading.Event()
    ordered = in_time_order(table)
    started = clock()
    first: datetime | None = None
    pending: list[dict[str, str]] = []
    pending_ts: datetime | None = None
    published = 0

    def flush() -> None:
        nonlocal published, pending
        if pending:
            publisher.publish_fields(pending)
            published += len(pending)
            pending = []

    for ts, fields in wire_rows(ordered, source):
        if stop_event.is_set():
            break
        if ts != pending_ts:
            flush()
            pending_ts = ts
            first = first or ts
            if speed is not None:
                due = started + (ts - first).total_seconds() / speed
                delay = due - clock()
                if delay > 0 and stop_event.wait(delay):
                    break
        pending.append(fields)
        if len(pending) >= 5000:
            flush()
    if not stop_event.is_set():
        flush()
    return published
