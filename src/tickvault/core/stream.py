"""The Redis stream: the durable log every tick passes through.

Publishing pipelines XADDs. Consuming follows the at-least-once recipe: each sink reads
its own consumer group, re-reads its own pending entries first (id 0) after a restart,
claims entries left pending by dead consumers (XAUTOCLAIM), and acks only after the
sink's write is durable. Entries refused by validation go to ``<stream>:dlq`` with the
reason and the original id before they are acked, so nothing disappears silently.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from .wire import DeadLetter, Tick

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, str]]

GROUPS = ("hot", "cold")


def connect(url: str) -> redis.Redis:
    """A str-decoding client (RESP2: XREADGROUP answers as lists, parsed by hiredis)."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


class Publisher:
    """Appends ticks to the stream, many XADDs per round trip."""

    def __init__(self, client: redis.Redis, stream: str, chunk: int = 1000, maxlen: int | None = None):
        self.client = client
        self.stream = stream
        self.chunk = chunk
        self.maxlen = maxlen  # None: never trim here; trimming is the sync module's job

    def publish_fields(self, entries: Iterable[Mapping[str, str]]) -> list[str]:
        """Publish raw wire entries; returns their stream ids in order."""
        ids: list[str] = []
        pipe = self.client.pipeline(transaction=False)
        pending = 0
        for fields in entries:
            pipe.xadd(self.stream, dict(fields))
            pending += 1
            if pending >= self.chunk:
                ids.extend(pipe.execute())
                pending = 0
        if pending:
            ids.extend(pipe.execute())
        return ids

    def publish(self, ticks: Iterable[Tick]) -> list[str]:
        return self.publish_fields(t.to_fields() for t in ticks)


def dead_letter(client: redis.Redis, dlq_stream: str, letters: Sequence[DeadLetter], stage: str) -> None:
    """Keep refused entries with their reason; field names are prefixed so nothing collides."""
    if not letters:
        return
    pipe = client.pipeline(transaction=False)
    for letter in letters:
        fields = {f"f.{k}": str(v) for k, v in letter.fields.items()}
        fields.update({"reason": letter.reason, "entry_id": letter.entry_id, "stage": stage})
        pipe.xadd(dlq_stream, fields)
    pipe.execute()


def parse_id(entry_id: str) -> tuple[int, int]:
    """A stream id ("1700000000000-3") as a sortable (ms, seq) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def default_consumer_name(group: str) -> str:
    return f"{group}-{socket.gethostname()}"


@dataclass
class GroupConsumer:
    """One consumer in one group. ``read`` yields pending entries first, then new ones."""

    client: redis.Redis
    stream: str
    group: str
    consumer: str
    claim_idle_ms: int = 60_000
    _pending_cursor: str | None = "0"  # "0": own pending list not yet drained after start
    _next_claim: float = 0.0  # monotonic time of the next look for entries a dead consumer left

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int, block_ms: int) -> list[Entry]:
        """The next batch: own pending entries (after a restart), then claimed, then new."""
        if self._pending_cursor is not None:
            entries = self._xreadgroup(self._pending_cursor, count, None)
            if entries:
                self._pending_cursor = entries[-1][0]
                return self._drop_deleted(entries)
            self._pending_cursor = None
        # not only at start: a peer in the group (another host) may die while this one runs
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self.claim_idle_ms / 2000
            claimed = self.claim(count)
            if claimed:
                return claimed
        return self._xreadgroup(">", count, block_ms)

    def claim(self, count: int) -> list[Entry]:
        """Take over entries that other (dead) consumers left pending for too long."""
        out: list[Entry] = []
        cursor = "0-0"
        while len(out) < count:
            result = self.client.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=count - len(out)
            )
            cursor, messages = result[0], result[1]
            out.extend(self._drop_deleted(messages))
            if cursor in ("0-0", b"0-0"):
                break
        return out

    def _drop_deleted(self, entries: list[Any]) -> list[Entry]:
        """Pending entries whose data was deleted from the stream come back as (id, None).

        Nothing can be written for them; ack them so they stop coming back, and say so
        loudly: the sync module never trims below an unacked entry, so this means someone
        trimmed or deleted the stream by hand (rebuild the sink from the other store).
        """
        live = [(i, f) for i, f in entries if f]
        gone = [i for i, f in entries if not f]
        if gone:
            log.error(
                "%d pending entries of group %s were deleted from %s before being stored (first %s); "
                "run `tickvault reconcile --repair` for the affected day",
                len(gone), self.group, self.stream, gone[0],
            )
            self.ack(gone)
        return live

    def reclaim_now(self) -> None:
        """Re-read the own pending list on the next ``read`` (after a failed write)."""
        self._pending_cursor = "0"

    def ack(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 10_000):
            self.client.xack(self.stream, self.group, *ids[start : start + 10_000])

    def _xreadgroup(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        reply: Any = self.client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count, block=block_ms)
        if not reply:
            return []
        # RESP2: [[stream, [(id, fields), ...]]]
        return list(reply[0][1])


def group_info(client: redis.Redis, stream: str) -> dict[str, dict[str, Any]]:
    """XINFO GROUPS as {group: info}; ``lag`` is computed when the server predates Redis 7."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        info = dict(g)
        if info.get("lag") is None:
            info["lag"] = _count_after(client, stream, info.get("last-delivered-id", "0-0"))
        out[info["name"]] = info
    return out


def stream_last_id(client: redis.Redis, stream: str) -> str | None:
    """The id of the newest entry ever added to ``stream`` (None when the stream does not exist)."""
    try:
        return str(client.xinfo_stream(stream)["last-generated-id"])
    except redis.ResponseError:
        return None


def _count_after(client: redis.Redis, stream: str, last_id: str) -> int:
    """Entries after ``last_id`` (exact; used only by status on old servers)."""
    total = 0
    start = f"({last_id}"
    while True:
        batch = client.xrange(stream, min=start, max="+", count=10_000)
        total += len(batch)
        if len(batch) < 10_000:
            return total
        start = f"({batch[-1][0]}"
