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
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...core.stream import FrameLimits, Publisher
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


REPLAY_CHUNK = 5000  # rows per publish call at maximum speed


def replay(
    table: pa.Table,
    publisher: Publisher,
    speed: float | None = 1.0,
    source: str | None = None,
    stop_event: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    frames: FrameLimits | None = None,
) -> int:
    """Publish ``table`` (TICK_SCHEMA) in time order; ticks of one instant go out together,
    each ``elapsed_trade_time / speed`` after the first. ``frames`` with ``max_trades`` > 0
    publishes v2 frames, else v1 entries. Returns ticks published."""
    stop_event = stop_event or threading.Event()
    ordered = in_time_order(table)
    if source is not None:
        ordered = ordered.set_column(ordered.schema.get_field_index("source"), "source", pa.repeat(source, ordered.num_rows))
    ts_us = ordered.column("ts").cast(pa.int64()).to_numpy()
    starts = [0, *(np.flatnonzero(np.diff(ts_us)) + 1).tolist()]
    started = clock()
    published = 0
    pending_from = 0  # rows [pending_from, row) are waiting to be published

    def flush(upto: int) -> None:
        nonlocal published, pending_from
        if upto > pending_from:
            part = ordered.slice(pending_from, upto - pending_from)
            if frames is not None and frames.max_trades > 0:
                publisher.publish_table(part, frames.max_trades, frames.max_bytes)
            else:
                encoder = WireEncoder(part)
                publisher.publish_fields(encoder.fields(i) for i in range(part.num_rows))
            published += part.num_rows
            pending_from = upto

    for row in starts:
        if stop_event.is_set():
            break
        if speed is None:  # as fast as Redis takes it: large publishes (and full frames)
            if row - pending_from >= REPLAY_CHUNK:
                flush(row)
            continue
        flush(row)
        due = started + (ts_us[row] - ts_us[0]) / 1e6 / speed
        delay = due - clock()
        if delay > 0 and stop_event.wait(delay):
            break
    if not stop_event.is_set():
        flush(ordered.num_rows)
    return published
