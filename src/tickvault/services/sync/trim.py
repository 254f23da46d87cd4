"""Trim the stream only below what every consumer group has acknowledged.

Redis 7.0 has no ``XTRIM ... ACKED`` (it arrived in 8.2), so the bound is computed: for each
group, its oldest unacknowledged entry is the oldest id in its pending list (XPENDING
summary) or, when nothing is pending, the entry right after its last-delivered id. The
minimum over the groups is passed to ``XTRIM MINID``, which keeps every id >= it. Positions
only move forward, so the bound computed a moment ago is still safe when XTRIM runs.

If a required group (hot, cold) does not exist, nothing is trimmed: that sink has never
read the stream and needs all of it. When the stream still holds more than the ceiling
after trimming, a lagging group is holding it back: an alarm is raised (metric + loud log
line) — unconsumed entries are never trimmed to save memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from ...core.config import Settings
from ...core.sharding import shard_streams, stream_client
from ...core.stream import GROUPS, connect, count_range, parse_id
from . import state

log = logging.getLogger(__name__)

MAX_SEQ = 2**64 - 1


@dataclass
class TrimResult:
    stream: str
    entries_before: int
    entries_after: int
    safe_min_id: str | None  # every group has acked everything below this id
    trimmed: int
    positions: dict[str, str] = field(default_factory=dict)  # group -> oldest entry it has not acked
    held_by: str | None = None  # the group whose position is the bound
    reason: str | None = None  # why nothing was trimmed
    alarm: str | None = None  # ceiling exceeded: what to do
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "entries_before": self.entries_before,
            "entries_after": self.entries_after,
            "safe_min_id": self.safe_min_id,
            "trimmed": self.trimmed,
            "positions": self.positions,
            "held_by": self.held_by,
            "reason": self.reason,
            "alarm": self.alarm,
            "dry_run": self.dry_run,
        }


def format_id(parts: tuple[int, int]) -> str:
    return f"{parts[0]}-{parts[1]}"


def next_id(entry_id: str) -> str:
    """The smallest id greater than ``entry_id``."""
    ms, seq = parse_id(entry_id)
    return format_id((ms + 1, 0) if seq == MAX_SEQ else (ms, seq + 1))


def oldest_unacked(client: redis.Redis, stream: str, group: dict[str, Any]) -> str:
    """The oldest id this group still needs: its oldest pending entry, else the next undelivered one."""
    if int(group.get("pending") or 0) > 0:
        summary = client.xpending(stream, group["name"])
        if summary and summary.get("pending") and summary.get("min"):
            return str(summary["min"])
    return next_id(str(group.get("last-delivered-id") or "0-0"))


def group_positions(client: redis.Redis, stream: str) -> dict[str, str]:
    """{group: oldest id it has not acknowledged} for every group of the stream."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such key
        return {}
    return {g["name"]: oldest_unacked(client, stream, g) for g in groups}


def safe_trim_id(positions: dict[str, str], required: Sequence[str]) -> tuple[str | None, str | None, str | None]:
    """(min id, group holding it, reason when trimming is not allowed)."""
    missing = [g for g in required if g not in positions]
    if missing:
        return None, None, (
            f"consumer group(s) {', '.join(missing)} do not exist yet; they would need the whole stream — "
            f"start `tickvault archive {missing[0]}` (or `tickvault rebuild {missing[0]}`) first"
        )
    if not positions:
        return None, None, "the stream has no consumer groups"
    held_by = min(positions, key=lambda g: parse_id(positions[g]))
    return positions[held_by], held_by, None


def stream_memory_mb(client: redis.Redis, stream: str) -> float:
    used = client.memory_usage(stream) or 0
    return used / (1024 * 1024)


def trim(
    settings: Settings,
    *,
    dry_run: bool = False,
    client: redis.Redis | None = None,
    required_groups: Sequence[str] = GROUPS,
    approximate: bool = False,
    record: bool = True,
) -> TrimResult:
    """Trim what every group acknowledged; raise the ceiling alarm if the rest is too big.

    ``approximate`` lets Redis trim whole macro nodes only (cheaper; still never removes an
    id >= the bound, so equally safe, just less thorough). ``record``: keep the result for the
    metrics (``trim_shards`` records the sum over the shards instead).
    """
    own = client is None
    client = client or connect(settings.redis_dsn)
    stream = settings.stream
    try:
        before = int(client.xlen(stream))
        positions = group_positions(client, stream)
        bound, held_by, reason = safe_trim_id(positions, required_groups) if before else (None, None, "the stream is empty")
        trimmed = 0
        if bound is not None and not dry_run:
            trimmed = int(client.xtrim(stream, minid=bound, approximate=approximate))
        elif bound is not None:
            trimmed = _count_below(client, stream, bound)
        after = before - trimmed
        result = TrimResult(stream, before, after, bound, trimmed, positions, held_by, reason, dry_run=dry_run)
        result.alarm = _ceiling_alarm(settings, client, result)
        if record and not dry_run:
            state.record_trim(after, trimmed, result.alarm)
        if result.alarm:
            log.error("STREAM CEILING ALARM: %s", result.alarm)
        elif trimmed:
            log.info("trimmed %d acknowledged entries from %s (below %s, held by group %s)", trimmed, stream, bound, held_by)
        elif reason:
            log.info("stream %s not trimmed: %s", stream, reason)
        return result
    finally:
        if own:
            client.close()


def trim_shards(settings: Settings, *, dry_run: bool = False) -> list[TrimResult]:
    """``trim`` on every shard of the stream (the plain stream when it has one shard), each below
    what both groups acknowledged there. A shard's ceiling is its share of the stream's
    (``stream_max_entries`` and ``stream_max_memory_mb`` divided by ``stream_shards``)."""
    shards = settings.stream_shards
    share = {"stream_max_entries": -(-settings.stream_max_entries // shards)}
    if settings.stream_max_memory_mb is not None:
        share["stream_max_memory_mb"] = -(-settings.stream_max_memory_mb // shards)
    client = stream_client(settings)
    try:
        results = [trim(settings.model_copy(update={"stream": key, **share}), dry_run=dry_run, client=client, record=False)
                   for key in shard_streams(settings)]
    finally:
        client.close()
    if not dry_run:
        alarms = [r.alarm for r in results if r.alarm]
        state.record_trim(sum(r.entries_after for r in results), sum(r.trimmed for r in results), alarms[0] if alarms else None)
    return results


def _count_below(client: redis.Redis, stream: str, bound: str) -> int:
    return count_range(client, stream, "-", f"({bound}")


def _ceiling_alarm(settings: Settings, client: redis.Redis, result: TrimResult) -> str | None:
    """A message when what is left exceeds the configured ceiling (entries or memory)."""
    problems: list[str] = []
    if result.entries_after > settings.stream_max_entries:
        problems.append(f"{result.entries_after} entries > stream_max_entries {settings.stream_max_entries}")
    limit_mb = settings.stream_max_memory_mb
    if limit_mb is not None:
        used = stream_memory_mb(client, result.stream)
        if used > limit_mb:
            problems.append(f"{used:.0f} MiB > stream_max_memory_mb {limit_mb}")
    if not problems:
        return None
    who = result.held_by or "a missing consumer group"
    return (
        f"stream {result.stream} holds unconsumed data beyond its ceiling ({'; '.join(problems)}), held back by "
        f"group {who}; it is NOT trimmed. Start or fix `tickvault archive {result.held_by or 'hot|cold'}`; if that sink "
        f"cannot catch up, run `tickvault rebuild {result.held_by or 'hot|cold'} --from <time>` (docs/sync.md)"
    )
