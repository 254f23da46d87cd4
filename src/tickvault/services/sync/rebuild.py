"""Refill a store that fell too far behind (or lost its stream) from the other store.

Order of operations, each step safe to repeat:

1. note the stream's last id L (if the stream is gone, create the target's group at 0 so
   everything published from now on reaches it);
2. wait until the other group has acknowledged every entry <= L, so the other store holds
   everything the stream had;
3. copy the time range from the other store in chunks (read_ticks -> upsert, idempotent);
4. move the target group's position to L (XGROUP SETID forward only, or create it there)
   and ack its pending entries <= L: their ticks came with the copy.

The target archiver then resumes after L and nothing is lost or duplicated. A failure
before step 4 leaves the group where it was; re-running the rebuild is always safe.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from ...core.config import Settings
from ...core.errors import QueryError, TickvaultError
from ...core.progress import ProgressFn, report
from ...core.retention import hot_days
from ...core.stream import connect, parse_id, stream_last_id
from ...stores.contract import TickStore
from .trim import group_positions
from .verify import open_stores

log = logging.getLogger(__name__)
UTC = UTC

CHUNK = timedelta(minutes=30)


class RebuildError(TickvaultError):
    """The rebuild cannot proceed safely; the message says what to do."""


@dataclass
class RebuildResult:
    target: str
    source: str
    start: datetime
    end: datetime
    read: int = 0
    added: int = 0
    group_position: str | None = None
    acked_pending: int = 0
    stream_existed: bool = True
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "source": self.source,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "ticks_read": self.read,
            "ticks_added": self.added,
            "group_position": self.group_position,
            "acked_pending": self.acked_pending,
            "stream_existed": self.stream_existed,
            "seconds": round(self.seconds, 3),
        }


def data_range(store: TickStore, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[first tick, last tick] of the source within [start, end), as a half-open range to copy."""
    bounds = store.bounds(start, end, None)
    if not bounds.ticks or bounds.first_ts is None or bounds.last_ts is None:
        return start, start
    return max(start, bounds.first_ts), min(end, bounds.last_ts + timedelta(microseconds=1))


def wait_for_group(client: redis.Redis, stream: str, group: str, last_id: str, wait_s: float) -> None:
    """Block until ``group`` has acked every entry <= ``last_id``, or raise RebuildError."""
    deadline = time.monotonic() + wait_s
    while True:
        positions = group_positions(client, stream)
        if group not in positions:
            raise RebuildError(
                f"the stream has no '{group}' group, so the {group} store may lack the stream's entries; "
                f"start `tickvault archive {group}` and let it catch up, then retry"
            )
        if parse_id(positions[group]) > parse_id(last_id):
            return
        if time.monotonic() >= deadline:
            raise RebuildError(
                f"group '{group}' has not stored everything up to {last_id} within {wait_s:.0f}s (oldest unacked "
                f"{positions[group]}); make sure `tickvault archive {group}` runs, then retry"
            )
        time.sleep(0.25)


def move_group(client: redis.Redis, stream: str, group: str, last_id: str) -> tuple[str, int]:
    """Put ``group`` at ``last_id`` (never backwards) and ack its pending entries <= it."""
    groups = {g["name"]: g for g in client.xinfo_groups(stream)}
    if group not in groups:
        client.xgroup_create(stream, group, id=last_id, mkstream=True)
        return last_id, 0
    delivered = str(groups[group].get("last-delivered-id") or "0-0")
    position = delivered
    if parse_id(last_id) > parse_id(delivered):
        client.xgroup_setid(stream, group, last_id)
        position = last_id
    acked = 0
    while True:
        pending = client.xpending_range(stream, group, min="-", max=last_id, count=10_000)
        if not pending:
            return position, acked
        ids = [p["message_id"] for p in pending]
        acked += int(client.xack(stream, group, *ids))


def rebuild(
    settings: Settings,
    target: str,
    start: datetime,
    end: datetime | None = None,
    *,
    wait_s: float = 60.0,
    chunk: timedelta = CHUNK,
    client: redis.Redis | None = None,
    stores: tuple[TickStore, TickStore] | None = None,
    on_progress: ProgressFn | None = None,
) -> RebuildResult:
    """Copy [start, end) into ``target`` ("hot" or "cold") from the other store, then move
    the target's consumer group past what the copy covered. ``end`` defaults to a day ahead
    (everything the other store has)."""
    if target not in ("hot", "cold"):
        raise QueryError(f"target must be hot or cold, not {target!r}")
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise QueryError("rebuild times need a UTC offset (e.g. 2026-11-20T09:00+09:00)")
    end = end or datetime.now(UTC) + timedelta(days=1)
    if end <= start:
        raise QueryError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    source = "cold" if target == "hot" else "hot"
    if target == "hot":
        oldest = hot_days(settings, datetime.now(UTC)).full_from
        if start < oldest:
            log.warning("rebuild hot: --from %s is beyond the hot retention; starting at %s", start.isoformat(), oldest.isoformat())
            start = oldest
            if end <= start:
                raise QueryError(f"the whole range is older than the hot store's retention ({settings.tick_retention_days} days)")
    started = time.perf_counter()
    own_client = client is None
    client = client or connect(settings.redis_dsn)
    if stores is None:
        hot, cold = open_stores(settings, "both")
        opened: tuple[TickStore, TickStore] | None = (hot, cold)
    else:
        hot, cold = stores
        opened = None
    src, dst = (cold, hot) if target == "hot" else (hot, cold)
    result = RebuildResult(target, source, start, end)
    try:
        stream = settings.stream
        last_id = stream_last_id(client, stream)
        if last_id is None:
            # The stream is gone (Redis lost it): every entry from now on must reach the target.
            result.stream_existed = False
            client.xgroup_create(stream, target, id="0", mkstream=True)
            last_id = "0-0"
            log.warning("stream %s did not exist; created it with group %s at 0", stream, target)
        else:
            wait_for_group(client, stream, source, last_id, wait_s)
        cursor, stop = data_range(src, start, end)
        first, minutes = cursor, max(0, int((stop - cursor).total_seconds() // 60))
        while cursor < stop:
            report(on_progress, int((cursor - first).total_seconds() // 60), minutes)
            upper = min(cursor + chunk, stop)
            ticks = src.read_ticks(cursor, upper)
            if ticks.num_rows:
                result.read += ticks.num_rows
                result.added += dst.upsert(ticks, why="rebuild")
            cursor = upper
        report(on_progress, minutes, minutes)
        if result.stream_existed:
            result.group_position, result.acked_pending = move_group(client, stream, target, last_id)
        else:
            result.group_position = "0-0"
        result.seconds = time.perf_counter() - started
        log.info(
            "rebuild %s from %s: %d ticks read, %d added, group %s at %s (%d pending acked) in %.1fs",
            target, source, result.read, result.added, target, result.group_position, result.acked_pending, result.seconds,
        )
        return result
    finally:
        if own_client:
            client.close()
        if opened is not None:
            for store in opened:
                store.close()
