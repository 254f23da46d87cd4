"""The Redis stream: the durable log every tick passes through.

Publishing pipelines XADDs. Consuming follows the at-least-once recipe: each sink reads
its own consumer group, re-reads its own pending entries first (id 0) after a restart,
claims entries left pending by dead consumers (XAUTOCLAIM) at start and every
``claim_idle_ms`` while running, and acks only after the sink's write is durable. Entries
refused by validation go to ``<stream>:dlq`` with the reason and the original id before
they are acked, so nothing disappears silently.

Consumers read bytes, never text: the reply is handed over exactly as Redis sent it (a
flat name/value list per entry, duplicate names kept) and ``core.frames`` decodes it, so
no byte sequence a producer can XADD can make a read raise.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import StreamError
from .frames import RawEntry, cap_text, fields_to_table, frame_fields, split_frames
from .wire import DeadLetter, Tick

log = logging.getLogger(__name__)

Entry = RawEntry

GROUPS = ("hot", "cold")
#: What a reason in a dead letter or a log line may hold (the dead letter keeps the value itself once).
MAX_REASON_CHARS = 300
DEFAULT_TIMEOUT_S = 10.0
#: A frame carries its Arrow schema (~1.2 KB): a collector's message with fewer trades goes out as v1.
FRAME_MIN_TRADES = 8


def connect(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> redis.Redis:
    """A str-decoding client for publishing and bookkeeping, with explicit timeouts: a Redis
    that stops answering raises ``redis.TimeoutError`` after ``timeout_s`` instead of hanging."""
    return redis.Redis.from_url(
        url, decode_responses=True, health_check_interval=30, protocol=2,
        socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
    )


def connect_raw(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> redis.Redis:
    """The consumers' client: bytes replies, explicit timeouts, no hidden retries (the archiver
    retries ConnectionError and TimeoutError itself and re-reads its pending entries after one)."""
    return redis.Redis.from_url(
        url, decode_responses=False, health_check_interval=30, protocol=2,
        socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
    )


def _as_is(response: Any, **_options: Any) -> Any:
    return response


def require_reachable(url: str) -> None:
    """Fail fast with one line naming TICKVAULT_REDIS_URL when Redis does not answer (credentials left out)."""
    from urllib.parse import urlsplit

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        where = urlsplit(url)
        at = f"{where.hostname}:{where.port or 6379}" if where.hostname else url.split("?")[0]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StreamError(f"Redis at {at} does not answer ({reason}): check TICKVAULT_REDIS_URL and that Redis is running") from None
    finally:
        client.close()


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

    def publish_table(self, table: pa.Table, frame_trades: int = 1000, frame_max_bytes: int = 1 << 20) -> list[str]:
        """Publish a TICK_SCHEMA table as v2 frames of at most ``frame_trades`` trades (and about
        ``frame_max_bytes``); returns one stream id per frame."""
        return self.publish_fields(frame_fields(part) for part in split_frames(table, frame_trades, frame_max_bytes))

    def publish_collected(self, entries: Sequence[Mapping[str, str]], frames: FrameLimits) -> list[str]:
        """A collector's parsed v1 fields, as v2 frames when ``frames.max_trades`` > 0 and every
        value converts; otherwise as v1 entries (the archivers then dead-letter what is wrong)."""
        table = fields_to_table(entries) if frames.max_trades > 0 and len(entries) >= FRAME_MIN_TRADES else None
        if table is None:
            return self.publish_fields(entries)
        return self.publish_table(table, frames.max_trades, frames.max_bytes)


@dataclass(frozen=True)
class FrameLimits:
    """How producers cut v2 frames: at most ``max_trades`` trades (0: publish v1 entries) and
    about ``max_bytes`` per entry; a collector holds trades at most ``max_delay_ms`` to fill one."""

    max_trades: int = 1000
    max_bytes: int = 1 << 20
    max_delay_ms: int = 5


@dataclass(frozen=True)
class SideRetention:
    """How much of a side stream (``<stream>:dlq``, ``<stream>:gaps``) Redis keeps: entries
    older than ``max_age_days`` or beyond the newest ``max_entries`` are trimmed (approximately)
    whenever an entry is added."""

    max_entries: int = 100_000
    max_age_days: int = 30


def side_stream_add(client: redis.Redis, stream: str, entries: Sequence[Mapping[str, Any]], retention: SideRetention) -> None:
    """Append to a side stream and apply its retention, in one round trip."""
    if not entries:
        return
    pipe = client.pipeline(transaction=False)
    for fields in entries:
        pipe.xadd(stream, dict(fields), maxlen=retention.max_entries, approximate=True)
    oldest_ms = int((time.time() - retention.max_age_days * 86_400) * 1000)
    pipe.xtrim(stream, minid=f"{max(oldest_ms, 0)}-0", approximate=True)
    pipe.execute()


def dead_letter(client: redis.Redis, dlq_stream: str, letters: Sequence[DeadLetter], stage: str,
                retention: SideRetention | None = None) -> None:
    """Keep refused entries with their reason; field names are prefixed so nothing collides.
    The reason is capped (the value it quotes is in the letter's own fields, in full, once)."""
    if not letters:
        return
    entries = []
    for letter in letters:
        fields = {f"f.{k}": str(v) for k, v in letter.fields.items()}
        fields.update({"reason": cap_text(letter.reason, MAX_REASON_CHARS), "entry_id": letter.entry_id, "stage": stage})
        if letter.index is not None:
            fields["index"] = str(letter.index)
        if letter.encoding != "text":
            fields["encoding"] = letter.encoding
        entries.append(fields)
    side_stream_add(client, dlq_stream, entries, retention or SideRetention())


def parse_id(entry_id: str) -> tuple[int, int]:
    """A stream id ("1700000000000-3") as a sortable (ms, seq) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def default_consumer_name(group: str) -> str:
    return f"{group}-{socket.gethostname()}"


@dataclass
class GroupConsumer:
    """One consumer in one group. ``read`` yields pending entries first, then new ones, and
    claims entries idle on other (dead) consumers at start and every ``claim_idle_ms``.

    ``client`` must answer in bytes (``connect_raw``): entries are returned as Redis sent them."""

    client: redis.Redis
    stream: str
    group: str
    consumer: str
    claim_idle_ms: int = 60_000
    _pending_cursor: str | None = "0"  # "0": own pending list not yet drained after start
    _next_claim_at: float = field(default=0.0, repr=False)  # time.monotonic() of the next periodic claim

    def __post_init__(self) -> None:
        if self.client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("GroupConsumer needs a bytes client (stream.connect_raw): a text client fails on entries that are not UTF-8")
        for command in ("XREADGROUP", "XAUTOCLAIM"):
            self.client.set_response_callback(command, _as_is)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int, block_ms: int | None) -> list[Entry]:
        """The next batch: own pending entries (after a restart), then claimed, then new."""
        if self._pending_cursor is not None:
            entries = self._xreadgroup(self._pending_cursor, count, None)
            if entries:
                self._pending_cursor = _text(entries[-1][0])
                return self._drop_deleted(entries)
            self._pending_cursor = None
        # not only at start: a peer in the group (another host) may die while this one runs
        if time.monotonic() >= self._next_claim_at:
            self._next_claim_at = time.monotonic() + self.claim_idle_ms / 2000
            claimed = self.claim(count)
            if claimed:
                log.info("group %s: consumer %s claimed %d entries idle on other consumers", self.group, self.consumer, len(claimed))
                return claimed
        return self._drop_deleted(self._xreadgroup(">", count, block_ms))

    def claim(self, count: int) -> list[Entry]:
        """Take over entries that other (dead) consumers left pending for too long."""
        out: list[Entry] = []
        cursor = "0-0"
        while len(out) < count:
            result = self.client.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=count - len(out)
            )
            cursor, messages = _text(result[0]), result[1]
            deleted = [_text(i) for i in result[2]] if len(result) > 2 else []
            if deleted:
                self._report_deleted(deleted, acked_by_redis=True)
            out.extend(self._drop_deleted(messages))
            if cursor == "0-0":
                break
        return out

    def _drop_deleted(self, entries: list[Any]) -> list[Entry]:
        """Pending entries whose data was deleted from the stream come back as (id, None).

        Nothing can be written for them; ack them so they stop coming back, and say so
        loudly: the sync module never trims below an unacked entry, so this means someone
        trimmed or deleted the stream by hand (rebuild the sink from the other store).
        """
        live = [(_text(i), _flat(f)) for i, f in entries if f]
        gone = [_text(i) for i, f in entries if not f]
        if gone:
            self._report_deleted(gone, acked_by_redis=False)
            self.ack(gone)
        return live

    def _report_deleted(self, gone: list[str], acked_by_redis: bool) -> None:
        log.error(
            "%d pending entries of group %s were deleted from %s before being stored (first %s)%s; "
            "run `tickvault reconcile --repair` for the affected day",
            len(gone), self.group, self.stream, gone[0], " and dropped from the pending list by Redis" if acked_by_redis else "",
        )

    def reclaim_now(self) -> None:
        """Re-read the own pending list on the next ``read`` (after a failed write)."""
        self._pending_cursor = "0"

    def ack(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 10_000):
            self.client.xack(self.stream, self.group, *ids[start : start + 10_000])

    def _xreadgroup(self, start: str, count: int, block_ms: int | None) -> list[Any]:
        reply: Any = self.client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count, block=block_ms)
        if not reply:
            return []
        # RESP2: [[stream, [[id, [name, value, ...]], ...]]]; RESP3 answers a map {stream: [...]}
        return list(next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1])


def read_range(client: redis.Redis, stream: str, start: str, end: str, count: int) -> list[Entry]:
    """XRANGE as raw entries (bytes, duplicate field names kept), for a ``connect_raw`` client:
    what a replay of the stream decodes exactly as the archivers do."""
    client.set_response_callback("XRANGE", _as_is)
    reply: Any = client.execute_command("XRANGE", stream, start, end, "COUNT", count)
    return [(_text(i), _flat(f)) for i, f in reply or [] if f]


def _flat(fields: Any) -> list[Any]:
    """An entry's fields as the flat [name, value, ...] list Redis sends. A cluster client parses
    replies on its nodes before our callback sees them (a dict: a repeated field name is already
    collapsed there; a single Redis keeps it)."""
    if isinstance(fields, dict):
        return [part for pair in fields.items() for part in pair]
    return list(fields)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def group_info(client: redis.Redis, stream: str) -> dict[str, dict[str, Any]]:
    """XINFO GROUPS as {group: info}. ``lag`` is 0 once a group was delivered the stream's last entry,
    and counted when Redis gives none (before 7.0) or claims none while entries follow: a replica of
    Redis < 7.2.5 promoted by a failover keeps each group's entries-read behind (redis#12898), so its
    lag would never return to 0 on a drained group."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return {}
    last = stream_last_id(client, stream) if groups else None
    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        info = dict(g)
        delivered = info.get("last-delivered-id", "0-0")
        if last is not None and parse_id(delivered) >= parse_id(last):
            info["lag"] = 0
        elif info.get("lag") is None or info["lag"] <= 0:
            info["lag"] = _count_after(client, stream, delivered)
        out[info["name"]] = info
    return out


def stream_last_id(client: redis.Redis, stream: str) -> str | None:
    """The id of the newest entry ever added to ``stream`` (None when the stream does not exist)."""
    try:
        # undecoded: XINFO STREAM carries the first and last entries, which a text client cannot
        # decode when they are v2 frames (or any bytes a producer wrote)
        info = client.execute_command("XINFO STREAM", stream, NEVER_DECODE=True)
        return _text(info["last-generated-id"])
    except redis.ResponseError:
        return None


def _count_after(client: redis.Redis, stream: str, last_id: str) -> int:
    """Entries after ``last_id`` (exact; only when Redis's own lag is missing or cannot be right)."""
    return count_range(client, stream, f"({last_id}", "+")


def count_range(client: redis.Redis, stream: str, start: str, end: str) -> int:
    """Entries with ids in [start, end] (XRANGE syntax), read undecoded: a frame or a poison
    entry must not make a count fail on a text client."""
    total = 0
    while True:
        batch = client.execute_command("XRANGE", stream, start, end, "COUNT", 10_000, NEVER_DECODE=True)
        total += len(batch)
        if len(batch) < 10_000:
            return total
        start = f"({_text(batch[-1][0])}"
