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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from datetime import time as dtime
from typing import Any

import redis

from ...core.calendar import in_session as calendar_in_session
from ...core.calendar import is_trading_day
from ...core.config import SessionHours
from ...core.stream import FrameLimits, Publisher, SideRetention, dead_letter, side_stream_add
from ...core.wire import DEFAULT_VENUE, KST, UTC, VENUES, DeadLetter, Venue

log = logging.getLogger(__name__)

#: websockets logs every frame at DEBUG, including the subscribe/LOGIN frames that carry the
#: approval key or token. Its connections log to this logger, pinned at INFO so that
#: `--log-level DEBUG` can never print a secret.
WIRE_LOG = logging.getLogger("tickvault.services.collectors.wire")
WIRE_LOG.setLevel(logging.INFO)


#: What a collector subscribes: a symbol (plain code) on one venue.
Pair = tuple[Venue, str]


class FatalCollectorError(RuntimeError):
    """A problem reconnecting cannot fix (configuration, limits): stop and tell the operator."""


class SessionLost(RuntimeError):
    """The session ended (server close, stall, refused login); the runner reconnects."""


@dataclass
class CollectorStats:
    """Counters for the Prometheus endpoint (``metrics.CollectorMetrics``) and the final log line."""

    frames: int = 0
    ticks: int = 0
    ticks_by_venue: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    parse_errors: int = 0
    venue_mismatches: int = 0  # records whose own venue field contradicts the subscription (also dead-lettered)
    gaps: int = 0
    uncovered: int = 0  # configured (venue, symbol) pairs no session receives (plan + refusals)
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
    """A window in which a collector could not receive ticks for ``symbols`` on ``venue``.

    ``start`` is the last moment the feed was known to be delivering (the last frame
    received), ``end`` the moment the resubscription was acknowledged again. Ticks with
    ``floor(start) <= ts <= end`` may be missing and must be checked against the broker.
    ``venue`` None (the record carries no ``venue`` field) means every venue: a feed that
    does not say which venue it carries (the pub/sub bridge).
    """

    source: str
    symbols: tuple[str, ...]
    start: datetime
    end: datetime
    reason: str
    venue: Venue | None = None

    def to_fields(self) -> dict[str, str]:
        venue = {"venue": self.venue} if self.venue else {}
        return {
            "source": self.source,
            **venue,
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
    """Is one of the session's venues trading now? The stall watchdog only fires then: within
    ``hours`` on trading days, and inside a trade window of a venue of ``venues`` in the
    session table (NXT is silent 08:50-09:00:30 and 15:20-15:40; KRX's 07:00 pre-market
    exists only where its rule is in force). Hours of the whole day ('00:00-24:00') arm it
    on every trading day whatever the table says."""

    def __init__(self, hours: SessionHours, venues: Collection[Venue] = VENUES):
        self.hours = hours
        self.venues = tuple(venues)
        self.whole_day = hours.start == dtime(0, 0) and hours.end == dtime.max

    def in_session(self, now: datetime | None = None) -> bool:
        now = (now or datetime.now(UTC)).astimezone(KST)
        if not (is_trading_day(now.date()) and now.time() in self.hours):
            return False
        return self.whole_day or any(calendar_in_session(now, venue) is not None for venue in self.venues)


class Outbox:
    """Ordered queue of everything a collector writes to Redis, drained by one task."""

    def __init__(self, client: redis.Redis, stream: str, stats: CollectorStats, stage: str, retry_max_s: float = 30.0,
                 frames: FrameLimits | None = None, dlq_retention: SideRetention | None = None,
                 gaps_retention: SideRetention | None = None, publisher: Publisher | None = None):
        """``publisher``: the stream's publisher (``core.sharding.publisher_for``: per shard on a cluster)."""
        self.client = client
        self.publisher = publisher or Publisher(client, stream)
        self.dlq = f"{stream}:dlq"
        self.gaps = gaps_stream(stream)
        self.stats = stats
        self.stage = stage
        self.retry_max_s = retry_max_s
        self.frames = frames or FrameLimits(max_trades=0)  # v1 unless asked (tests read entries as text)
        self.dlq_retention = dlq_retention or SideRetention()
        self.gaps_retention = gaps_retention or SideRetention()
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._warned_at = 0

    # --- producers (the receive loops); never block
    def ticks(self, entries: Sequence[Mapping[str, str]]) -> None:
        if entries:
            self.stats.ticks += len(entries)
            for entry in entries:
                venue = entry.get("venue") or DEFAULT_VENUE
                self.stats.ticks_by_venue[venue] = self.stats.ticks_by_venue.get(venue, 0) + 1
            self._put(("ticks", list(entries)))

    def dead(self, raw: str, reason: str, **extra: str) -> None:
        self.stats.parse_errors += 1
        log.warning("%s: unparseable frame sent to the DLQ: %s", self.stage, reason)
        self._put(("dead", DeadLetter(entry_id="", fields={"raw": raw, **extra}, reason=reason)))

    def gap(self, gap: Gap) -> None:
        self.stats.gaps += 1
        log.warning(
            "%s: no data for %d %s symbol(s) from %s to %s (%.1fs, %s); recorded in %s for reconcile/recovery",
            gap.source, len(gap.symbols), gap.venue or "(any venue)", gap.start.isoformat(), gap.end.isoformat(),
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
            if self.frames.max_trades and self.frames.max_delay_ms and self.queue.qsize() < 500:
                await asyncio.sleep(self.frames.max_delay_ms / 1000)  # let a frame fill for a few ms
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
            self.publisher.publish_collected(parts.ticks, self.frames)
            self.stats.published += len(parts.ticks)
            parts.ticks = []
        if parts.letters:
            dead_letter(self.client, self.dlq, parts.letters, stage=self.stage, retention=self.dlq_retention)
            parts.letters = []
        while parts.gaps:
            side_stream_add(self.client, self.gaps, [parts.gaps[0].to_fields()], self.gaps_retention)
            parts.gaps.pop(0)


@dataclass
class _Parts:
    ticks: list[Mapping[str, str]]
    letters: list[DeadLetter]
    gaps: list[Gap]


@dataclass
class GapTracker:
    """Turns disconnects into Gap records: opened when a subscribed session is lost,
    closed when a new session has all its pairs subscribed again — one record per venue
    the session carries."""

    source: str
    pairs: tuple[Pair, ...]
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
        end = now or datetime.now(UTC)
        for venue in VENUES:
            symbols = tuple(s for v, s in self.pairs if v == venue)
            if symbols:
                gap = Gap(self.source, symbols, self.open_since, end, self.reason, venue)
                self.history.append(gap)
                self.outbox.gap(gap)
        self.open_since = None

    def close_on_stop(self) -> None:
        if self.open_since is not None:
            self.reason = f"{self.reason}; collector stopped while disconnected"
            self.resumed()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def monotonic() -> float:
    return time.monotonic()
