"""What every real-time collector shares: counters, the outbox to Redis, gap records,
jittered backoff and the trading-session clock.

The receive loop of a collector must never wait on Redis (a broker that gets no answer
to its heartbeat drops the session), so parsed ticks, dead letters and gap records go to
an in-memory outbox that one writer task drains into Redis with retry. Nothing is dropped
while Redis is down; the outbox just grows (and says so in the log).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis

from ...core.calendar import is_trading_day
from ...core.config import SessionHours
from ...core.stream import Publisher, dead_letter
from ...core.wire import KST, UTC, DeadLetter

log = logging.getLogger(__name__)

#: websockets logs every frame at DEBUG, including the subscribe/LOGIN frames that carry the
#: approval key or token. Its connections log to this logger, pinned at INFO so that
#: `--log-level DEBUG` can never print a secret.
WIRE_LOG = logging.getLogger("tickvault.services.collectors.wire")
WIRE_LOG.setLevel(logging.INFO)


class FatalCollectorError(RuntimeError):
    """A problem reconnecting cannot fix (configuration, limits): stop and tell the operator."""


class SessionLost(RuntimeError):
    """The session ended (server close, stall, refused login); the runner reconnects."""


@dataclass
class CollectorStats:
    """Counters for the Prometheus endpoint (``metrics.CollectorMetrics``) and the final log line."""

    frames: int = 0
    ticks: int = 0
    reconnects: int = 0
    parse_errors: int = 0
    gaps: int = 0
    published: int = 0
    connected: bool = False
    last_frame_at: float | None = None  # time.time()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gaps_stream(stream: str) -> str:
    """Where disconnected windows are recorded (reconcile/recovery read it with XRANGE)."""
    return f"{stream}:gaps"


@dataclass(frozen=True)
class Gap:
    """A window in which a collector could not receive ticks for ``symbols``.

    ``start`` is the last moment the feed was known to be delivering (the last frame
    received), ``end`` the moment the resubscription was acknowledged again. Ticks with
    ``floor(start) <= ts <= end`` may be missing and must be checked against the broker.
    """

    source: str
    symbols: tuple[str, ...]
    start: datetime
    end: datetime
    reason: str

    def to_fields(self) -> dict[str, str]:
        return {
            "source": self.source,
            "symbols": ",".join(self.symbols),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seconds": f"{(self.end - self.start).total_seconds():.3f}",
            "trading_date": self.start.astimezone(KST).date().isoformat(),
            "reason": self.reason,
        }


class Backoff:
    """Exponential backoff with full jitter in [delay/2, delay]; reset after a good session."""

    def __init__(self, initial: float, maximum: float):
        self.initial = initial
        self.maximum = maximum
        self.delay = initial

    def next(self) -> float:
        wait = self.delay * (0.5 + random.random() / 2)
        self.delay = min(self.delay * 2, self.maximum)
        return wait

    def reset(self) -> None:
        self.delay = self.initial


class SessionClock:
    """Is the market in session now? The stall watchdog only fires during the session
    (KRX trades 08:30-18:00 KST on trading days; outside, silence is normal)."""

    def __init__(self, hours: SessionHours):
        self.hours = hours

    def in_session(self, now: datetime | None = None) -> bool:
        now = (now or datetime.now(UTC)).astimezone(KST)
        return is_trading_day(now.date()) and now.time() in self.hours


class Outbox:
    """Ordered queue of everything a collector writes to Redis, drained by one task."""

    def __init__(self, client: redis.Redis, stream: str, stats: CollectorStats, stage: str, retry_max_s: float = 30.0,
                 publisher: Publisher | None = None):
        """``publisher``: the stream's publisher (``core.sharding.publisher_for``: per shard on a cluster)."""
        self.client = client
        self.publisher = publisher or Publisher(client, stream)
        self.dlq = f"{stream}:dlq"
        self.gaps = gaps_stream(stream)
        self.stats = stats
        self.stage = stage
        self.retry_max_s = retry_max_s
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._warned_at = 0

    # --- producers (the receive loops); never block
    def ticks(self, entries: Sequence[Mapping[str, str]]) -> None:
        if entries:
            self.stats.ticks += len(entries)
            self._put(("ticks", list(entries)))

    def dead(self, raw: str, reason: str, **extra: str) -> None:
        self.stats.parse_errors += 1
        log.warning("%s: unparseable frame sent to the DLQ: %s", self.stage, reason)
        self._put(("dead", DeadLetter(entry_id="", fields={"raw": raw, **extra}, reason=reason)))

    def gap(self, gap: Gap) -> None:
        self.stats.gaps += 1
        log.warning(
            "%s: no data for %d symbol(s) from %s to %s (%.1fs, %s); recorded in %s for reconcile/recovery",
            gap.source, len(gap.symbols), gap.start.isoformat(), gap.end.isoformat(),
            (gap.end - gap.start).total_seconds(), gap.reason, self.gaps,
        )
        self._put(("gap", gap))

    def _put(self, item: tuple[str, Any]) -> None:
        self.queue.put_nowait(item)
        size = self.queue.qsize()
        if size >= 1000 and size >= 2 * self._warned_at:
            self._warned_at = size
            log.error("%s: %d batches waiting for Redis (kept in memory, nothing dropped)", self.stage, size)

    # --- the single writer
    async def run(self, stop: asyncio.Event) -> None:
        """Write until ``stop`` is set and the queue is empty."""
        while True:
            if self.queue.empty():
                if stop.is_set():
                    return
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout=0.2)
                except TimeoutError:
                    continue
            else:
                item = self.queue.get_nowait()
            batch = [item]
            while not self.queue.empty() and len(batch) < 500:
                batch.append(self.queue.get_nowait())
            await self._write_with_retry(batch)
            if self.queue.empty():
                self._warned_at = 0

    async def _write_with_retry(self, items: list[tuple[str, Any]]) -> None:
        parts = _Parts(
            ticks=[f for kind, payload in items if kind == "ticks" for f in payload],
            letters=[p for kind, p in items if kind == "dead"],
            gaps=[p for kind, p in items if kind == "gap"],
        )
        backoff = Backoff(0.2, self.retry_max_s)
        while True:
            try:
                await asyncio.to_thread(self._write, parts)
                return
            except redis.RedisError as exc:
                wait = backoff.next()
                log.error("%s: Redis write failed (%s); retrying in %.1fs — check TICKVAULT_REDIS_URL", self.stage, exc, wait)
                await asyncio.sleep(wait)

    def _write(self, parts: _Parts) -> None:
        """Each part is emptied once written, so a retry repeats only what failed. Inside a
        failed pipeline some XADDs may have landed: the retry then adds those ticks twice,
        which the archivers' upsert on the natural key makes harmless (not retrying would lose them)."""
        if parts.ticks:
            self.publisher.publish_fields(parts.ticks)
            self.stats.published += len(parts.ticks)
            parts.ticks = []
        if parts.letters:
            dead_letter(self.client, self.dlq, parts.letters, stage=self.stage)
            parts.letters = []
        while parts.gaps:
            self.client.xadd(self.gaps, parts.gaps[0].to_fields())
            parts.gaps.pop(0)


@dataclass
class _Parts:
    ticks: list[Mapping[str, str]]
    letters: list[DeadLetter]
    gaps: list[Gap]


@dataclass
class GapTracker:
    """Turns disconnects into Gap records: opened when a subscribed session is lost,
    closed when a new session has all its symbols subscribed again."""

    source: str
    symbols: tuple[str, ...]
    outbox: Outbox
    open_since: datetime | None = None
    reason: str = ""
    history: list[Gap] = field(default_factory=list)

    def lost(self, last_good: datetime, reason: str) -> None:
        if self.open_since is None:
            self.open_since = last_good
            self.reason = reason

    def resumed(self, now: datetime | None = None) -> None:
        if self.open_since is None:
            return
        gap = Gap(self.source, self.symbols, self.open_since, now or datetime.now(UTC), self.reason)
        self.open_since = None
        self.history.append(gap)
        self.outbox.gap(gap)

    def close_on_stop(self) -> None:
        if self.open_since is not None:
            self.reason = f"{self.reason}; collector stopped while disconnected"
            self.resumed()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def monotonic() -> float:
    return time.monotonic()
