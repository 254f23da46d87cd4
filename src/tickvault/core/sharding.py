"""The stream split into shards, for Redis Cluster (TICKVAULT_REDIS_CLUSTER, TICKVAULT_STREAM_SHARDS).

Each (venue, symbol) goes to shard ``crc32("VENUE:SYMBOL") % N``, so one symbol's ticks keep their
order in one stream. Shard ``i`` is the key ``<stream>:{ii}``: the hash tag puts each shard in a
slot of its own (XREADGROUP over keys of different slots fails on a cluster, so every shard is
read by its own consumer). One shard (the default) is the plain ``<stream>`` key, exactly as on one
Redis. On a cluster every chunk of XADDs is followed by ``WAIT 1`` on the same connection, so an
entry the publisher counts as sent is on a replica too and survives the failover of its master.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from .config import Settings
from .frames import fields_to_table, frame_fields, split_frames
from .stream import FRAME_MIN_TRADES, FrameLimits, connect, connect_raw
from .wire import Tick

log = logging.getLogger(__name__)

#: what a client meets while a cluster fails over: retry after a moment (the topology refreshes)
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, redis.exceptions.RedisClusterException,
    redis.exceptions.TryAgainError, redis.exceptions.MovedError, redis.exceptions.ReadOnlyError,
)

#: how long one WAIT for a replica may take, and how long a chunk is retried across a failover
WAIT_MS = 1000
FAILOVER_BUDGET_S = 60.0


def shard_of(venue: str, symbol: str, shards: int) -> int:
    """The shard of a (venue, symbol): crc32 of "VENUE:SYMBOL" modulo the shard count."""
    return zlib.crc32(f"{venue}:{symbol}".encode()) % shards


def shard_key(stream: str, shard: int, shards: int) -> str:
    """The Redis key of one shard (the plain stream when there is one)."""
    return stream if shards == 1 else f"{stream}:{{{shard:02d}}}"


def shard_streams(settings: Settings) -> list[str]:
    """Every shard key of the settings' stream, in shard order."""
    return [shard_key(settings.stream, i, settings.stream_shards) for i in range(settings.stream_shards)]


def stream_client(settings: Settings, raw: bool = False) -> Any:
    """The stream's Redis client (a cluster client with TICKVAULT_REDIS_CLUSTER; a single Redis gets
    explicit timeouts); ``raw``: bytes replies, what consumers need (frames, entries that are not UTF-8)."""
    timeout = settings.redis_timeout_s
    if not settings.redis_cluster:
        return connect_raw(settings.redis_dsn, timeout) if raw else connect(settings.redis_dsn, timeout)
    return RedisCluster.from_url(settings.redis_dsn, decode_responses=not raw, retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 10))


def recover(client: Any) -> None:
    """After a failed call on a cluster: refresh the slot map and move off a dead default node
    (redis-py asks the default node which keys an XREADGROUP names, so a dead one fails every read)."""
    if not isinstance(client, RedisCluster):
        return
    try:
        client.nodes_manager.initialize()
        client.replace_default_node()
    except TRANSIENT_ERRORS as exc:
        log.warning("Redis Cluster topology refresh failed (%s); retrying with the next call", exc)


class ShardedPublisher:
    """``Publisher``'s interface over the shards: each entry to its (venue, symbol)'s shard.

    On a cluster each shard's chunk goes over one connection to the master of its slot, followed by
    ``WAIT 1``; a chunk that meets a failover is sent again after the topology is refreshed (a
    repeated entry is harmless: the stores keep each natural key once)."""

    def __init__(self, client: Any, settings: Settings, chunk: int = 1000):
        self.client = client
        self.stream = settings.stream
        self.shards = settings.stream_shards
        self.cluster = isinstance(client, RedisCluster)
        self.chunk = chunk

    def publish_fields(self, entries: Iterable[Mapping[str, str]]) -> list[str]:
        """Publish raw wire entries; returns their stream ids in order (ids of different shards)."""
        ids: list[str] = []
        buffered: dict[int, list[tuple[int, dict[str, str]]]] = {}
        for position, fields in enumerate(entries):
            shard = shard_of(*_venue_symbol(fields), self.shards)
            buffered.setdefault(shard, []).append((position, dict(fields)))
            ids.append("")
            if len(buffered[shard]) >= self.chunk:
                self._send(shard, buffered.pop(shard), ids)
        for shard, items in buffered.items():
            self._send(shard, items, ids)
        return ids

    def publish(self, ticks: Iterable[Tick]) -> list[str]:
        return self.publish_fields(t.to_fields() for t in ticks)

    def publish_table(self, table: pa.Table, frame_trades: int = 1000, frame_max_bytes: int = 1 << 20) -> list[str]:
        """A TICK_SCHEMA table as v2 frames, each shard's rows framed apart (row order kept per shard)."""
        pairs = list(zip(table.column("venue").to_pylist(), table.column("symbol").to_pylist(), strict=True))
        shard_by_pair = {pair: shard_of(*pair, self.shards) for pair in set(pairs)}
        row_shard = np.array([shard_by_pair[pair] for pair in pairs], dtype=np.int64)
        ids: list[str] = []
        for shard in sorted(set(shard_by_pair.values())):
            part = table.filter(pa.array(row_shard == shard))
            frames = [frame_fields(piece) for piece in split_frames(part, frame_trades, frame_max_bytes)]
            out = [""] * len(frames)
            self._send(shard, list(enumerate(frames)), out)
            ids += out
        return ids

    def publish_collected(self, entries: Sequence[Mapping[str, str]], frames: FrameLimits) -> list[str]:
        """Like ``Publisher.publish_collected``: v2 frames when every value converts, else v1 entries."""
        table = fields_to_table([dict(e) for e in entries]) if frames.max_trades > 0 and len(entries) >= FRAME_MIN_TRADES else None
        if table is None:
            return self.publish_fields(entries)
        return self.publish_table(table, frames.max_trades, frames.max_bytes)

    def _send(self, shard: int, items: list[tuple[int, dict[str, Any]]], ids: list[str]) -> None:
        key = shard_key(self.stream, shard, self.shards)
        deadline = time.monotonic() + FAILOVER_BUDGET_S
        while True:
            try:
                new_ids = self._xadd(key, [fields for _, fields in items])
                break
            except TRANSIENT_ERRORS as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("stream shard %s: %s; retrying after refreshing the cluster topology", key, exc)
                time.sleep(0.5)
                recover(self.client)
        for (position, _), entry_id in zip(items, new_ids):
            ids[position] = entry_id

    def _xadd(self, key: str, entries: list[dict[str, Any]]) -> list[str]:
        if not self.cluster:
            pipe = self.client.pipeline(transaction=False)
            for fields in entries:
                pipe.xadd(key, fields)
            return list(pipe.execute())
        node = self.client.get_node_from_key(key)
        master = self.client.get_redis_connection(node)
        pipe = master.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(key, fields)
        pipe.execute_command("WAIT", 1, WAIT_MS)
        *new_ids, replicas = pipe.execute()
        if int(replicas) < 1:
            log.warning("stream shard %s: no replica confirmed %d entries within %d ms", key, len(entries), WAIT_MS)
        return list(new_ids)


def _venue_symbol(fields: Mapping[str, str]) -> tuple[str, str]:
    """(venue, plain symbol) as the wire says it; a malformed entry still goes to some shard (and
    from there to the dead letters)."""
    symbol = fields.get("symbol", "")
    if symbol.endswith("_NX"):
        return "NXT", symbol.removesuffix("_NX")
    return fields.get("venue") or "KRX", symbol


def publisher_for(settings: Settings, client: Any | None = None) -> Any:
    """The settings' publisher: a plain ``Publisher`` for one shard on one Redis (the default)."""
    from .stream import Publisher

    client = client if client is not None else stream_client(settings)
    if settings.stream_shards == 1 and not settings.redis_cluster:
        return Publisher(client, settings.stream)
    return ShardedPublisher(client, settings)
