"""Refill a store that fell too far behind (or lost its stream) from the other store.

Order of operations, each step safe to repeat; the stream steps are done on every shard of a
sharded stream (TICKVAULT_STREAM_SHARDS), each with its own last id:

1. note each shard's last id L (if a shard is gone, create the target's group on it at 0 so
   everything published there from now on reaches it);
2. wait until the other group has acknowledged every entry <= L on each shard, so the other
   store holds everything the stream had;
3. copy the time range from the other store in chunks (read_ticks -> upsert, idempotent), once;
4. replay from each shard every entry the target has not acknowledged (<= L) whose tick the
   copy did not provably carry: outside the copied range, or older than what the source
   holds (hot retention dropped its day). The copy only vouches for what the source holds;
   the stream still holds the rest, because trim never passes the target's position;
5. move the target group's position on each shard to its L (XGROUP SETID forward only, or
   create it there) and ack its pending entries <= L: their ticks are now in the target.

The target archivers then resume after L and nothing is lost or duplicated. A failure
before step 5 leaves the groups where they were; re-running the rebuild is always safe.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import redis

from ...core.config import Settings
from ...core.errors import QueryError, TickvaultError
from ...core.frames import decode_raw_entries
from ...core.progress import ProgressFn, report
from ...core.retention import hot_days
from ...core.sharding import shard_streams, stream_client
from ...core.stream import dead_letter, parse_id, read_range, stream_last_id
from ...stores.contract import TickStore
from ...stores.lake import Lake
from .trim import group_positions
from .verify import open_stores

log = logging.getLogger(__name__)
UTC = UTC

CHUNK = timedelta(minutes=30)
REPLAY_ENTRIES = 10_000  # stream entries read per replay round trip


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
    group_position: str | None = None  # the target group's position (one shard; None when sharded: see ``shards``)
    acked_pending: int = 0
    stream_existed: bool = True
    replayed_entries: int = 0  # entries of the target's backlog read back from the stream
    replayed_ticks: int = 0  # their ticks the copy did not carry, written to the target
    replay_added: int = 0
    dead_letters: int = 0  # backlog entries that fail validation (dead-lettered, as the archiver would)
    seconds: float = 0.0
    shards: dict[str, str] = field(default_factory=dict)  # stream key -> the target group's position there

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
            "replayed_entries": self.replayed_entries,
            "replayed_ticks": self.replayed_ticks,
            "replay_added": self.replay_added,
            "dead_letters": self.dead_letters,
            "seconds": round(self.seconds, 3),
            "shards": dict(self.shards),
        }


def positions_text(shards: dict[str, str]) -> str:
    """A group's position(s): the one id of a single stream, else "key id" for each shard."""
    if len(shards) == 1:
        return next(iter(shards.values()))
    return ", ".join(f"{key} {position}" for key, position in shards.items())


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
                f"stream {stream} has no '{group}' group, so the {group} store may lack its entries; "
                f"start `tickvault archive {group}` and let it catch up, then retry"
            )
        if parse_id(positions[group]) > parse_id(last_id):
            return
        if time.monotonic() >= deadline:
            raise RebuildError(
                f"group '{group}' has not stored everything of {stream} up to {last_id} within {wait_s:.0f}s (oldest unacked "
                f"{positions[group]}); make sure `tickvault archive {group}` runs, then retry"
            )
        time.sleep(0.25)


def uncovered(batch: pa.Table, covered: tuple[datetime, datetime]) -> pa.Table:
    """The rows of ``batch`` whose ``ts`` lies outside the copied range [lo, hi)."""
    ts = batch.column("ts")
    lo, hi = (pa.scalar(t, ts.type) for t in covered)
    return batch.filter(pc.or_(pc.less(ts, lo), pc.greater_equal(ts, hi)))


def replay_backlog(client: redis.Redis, raw: redis.Redis, settings: Settings, stream: str, target: str, last_id: str,
                   dst: TickStore, covered: tuple[datetime, datetime], result: RebuildResult, chunk: int = REPLAY_ENTRIES) -> None:
    """Write into ``dst`` the ticks of the entries <= ``last_id`` of ``stream`` (one shard) the target
    has not acknowledged (the whole shard when its group does not exist yet) that lie outside
    ``covered``. ``raw`` answers in bytes: frames, and any entry a producer wrote."""
    cursor = group_positions(client, stream).get(target, "-")
    while True:
        entries = read_range(raw, stream, cursor, last_id, chunk)
        if not entries:
            return
        decoded = decode_raw_entries(entries)
        missing = uncovered(decoded.table, covered)
        if missing.num_rows:
            result.replayed_ticks += missing.num_rows
            result.replay_added += dst.upsert(missing)
        if decoded.dead:
            dead_letter(client, settings.dlq_stream, decoded.dead, stage=f"rebuild-{target}")
            result.dead_letters += len(decoded.dead)
        result.replayed_entries += len(entries)
        if len(entries) < chunk:
            return
        cursor = "(" + entries[-1][0]


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
    client: redis.Redis | None = None,  # the stream's client (decoded replies); a cluster client when sharded
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
    client = client or stream_client(settings)
    if stores is None:
        hot, cold = open_stores(settings, "both")
        opened: tuple[TickStore, TickStore] | None = (hot, cold)
    else:
        hot, cold = stores
        opened = None
    src, dst = (cold, hot) if target == "hot" else (hot, cold)
    result = RebuildResult(target, source, start, end)
    try:
        if isinstance(dst, Lake):
            dst.require()  # copy into a lake `tickvault init` created, never into a mistyped path
        last_ids = {stream: stream_last_id(client, stream) for stream in shard_streams(settings)}
        result.stream_existed = all(last_id is not None for last_id in last_ids.values())
        positions: dict[str, str] = {}
        deadline = time.monotonic() + wait_s
        for stream, last_id in last_ids.items():
            if last_id is None:
                # The shard is gone (Redis lost it): every entry from now on must reach the target.
                client.xgroup_create(stream, target, id="0", mkstream=True)
                positions[stream] = "0-0"
                log.warning("stream %s did not exist; created it with group %s at 0", stream, target)
            else:
                wait_for_group(client, stream, source, last_id, max(0.0, deadline - time.monotonic()))
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
        # what the copy vouches for: [start, end), less what hot retention has dropped by now
        held_from = max(start, hot_days(settings, datetime.now(UTC)).full_from) if source == "hot" else start
        with closing(stream_client(settings, raw=True)) as raw:
            for stream, last_id in last_ids.items():
                if last_id is None:
                    continue
                replay_backlog(client, raw, settings, stream, target, last_id, dst, (held_from, max(held_from, end)), result)
                positions[stream], acked = move_group(client, stream, target, last_id)
                result.acked_pending += acked
        result.shards = {stream: positions[stream] for stream in last_ids}  # in shard order
        if len(result.shards) == 1:
            result.group_position = positions[settings.stream]
        result.seconds = time.perf_counter() - started
        log.info(
            "rebuild %s from %s: %d ticks read, %d added; %d entries of its backlog replayed from the stream "
            "(%d ticks the copy did not carry, %d added, %d dead-lettered); group %s at %s (%d pending acked) in %.1fs",
            target, source, result.read, result.added, result.replayed_entries, result.replayed_ticks, result.replay_added,
            result.dead_letters, target, positions_text(result.shards), result.acked_pending, result.seconds,
        )
        return result
    finally:
        if own_client:
            client.close()
        if opened is not None:
            for store in opened:
                store.close()
