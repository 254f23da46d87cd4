"""Legacy bridge: the owner's existing Redis pub/sub channel -> the durable stream.

Pub/sub has no memory: a message published while this bridge is not subscribed (down,
restarting, reconnecting) is gone for good. The bridge therefore records every window in
which it was not subscribed in ``<stream>:gaps`` so reconcile/recovery check it against the
broker. It exists to give the archivers a durable log before the old collector is replaced.

Messages are JSON objects; a mapping file (TOML or JSON) names the fields::

    source = "legacy"            # wire `source` of the ticks
    ts_format = "iso"            # iso | epoch_s | epoch_ms | hhmmss (+ date_field, YYYYMMDD)
    [fields]
    symbol = "code"
    ts = "time"
    price = "price"
    volume = "qty"
    cum_volume = "acc_qty"
    side = "side"                # optional
    # date = "date"              # with ts_format = "hhmmss"; default: the KST date on receipt
    [side_values]
    buy = ["B", "1", "buy", "+"]
    sell = ["S", "5", "sell", "-"]
"""

from __future__ import annotations

import json
import logging
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from ...core.stream import FrameLimits, Publisher, SideRetention, dead_letter, side_stream_add
from ...core.wire import KST, UTC, DeadLetter, InvalidTick, parse_price
from .base import Backoff, CollectorStats, Gap, gaps_stream
from .mapping import business_date, kst_instant, make_tick, unsigned_int

log = logging.getLogger(__name__)

TS_FORMATS = ("iso", "epoch_s", "epoch_ms", "hhmmss")


@dataclass
class FieldMapping:
    """Which JSON keys hold which tick values. Defaults: the wire names themselves."""

    symbol: str = "symbol"
    ts: str = "ts"
    price: str = "price"
    volume: str = "volume"
    cum_volume: str = "cum_volume"
    side: str | None = "side"
    date: str | None = None
    ts_format: str = "iso"
    source: str = "legacy"
    buy: tuple[str, ...] = ("B", "b", "1", "buy", "BUY", "+")
    sell: tuple[str, ...] = ("S", "s", "5", "sell", "SELL", "-")

    @classmethod
    def load(cls, path: str | Path | None) -> FieldMapping:
        if path is None:
            return cls()
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
            data: dict[str, Any] = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
        except (OSError, ValueError) as exc:
            raise ValueError(f"mapping file {path}: {exc}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "mapping") -> FieldMapping:
        known = {"source", "ts_format", "fields", "side_values"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(known))}")
        fields = dict(data.get("fields", {}))
        allowed = {"symbol", "ts", "price", "volume", "cum_volume", "side", "date"}
        if set(fields) - allowed:
            raise ValueError(f"{where}: unknown [fields] {', '.join(sorted(set(fields) - allowed))}; allowed: {', '.join(sorted(allowed))}")
        mapping = cls(**fields)
        mapping.source = str(data.get("source", mapping.source))
        mapping.ts_format = str(data.get("ts_format", mapping.ts_format))
        if mapping.ts_format not in TS_FORMATS:
            raise ValueError(f"{where}: ts_format must be one of {', '.join(TS_FORMATS)}, got {mapping.ts_format!r}")
        sides = data.get("side_values", {})
        if "buy" in sides:
            mapping.buy = tuple(str(v) for v in sides["buy"])
        if "sell" in sides:
            mapping.sell = tuple(str(v) for v in sides["sell"])
        return mapping

    def to_fields(self, message: Mapping[str, Any], received_at: datetime) -> dict[str, str]:
        """One legacy message -> wire fields; raises InvalidTick with the reason."""

        def get(key: str) -> str:
            if key not in message or message[key] is None:
                raise InvalidTick(f"message has no {key!r} field (check the mapping file)")
            return str(message[key]).strip()

        side_text = str(message.get(self.side, "") or "") if self.side else ""
        side = "B" if side_text in self.buy else "S" if side_text in self.sell else None
        return make_tick(
            symbol=get(self.symbol),
            ts=self._ts(get(self.ts), message, received_at),
            price=parse_price(get(self.price).lstrip("+-")),
            volume=unsigned_int(get(self.volume), "volume"),
            cum_volume=unsigned_int(get(self.cum_volume), "cum_volume"),
            side=side,
            source=self.source,
            received_at=received_at,
        )

    def _ts(self, text: str, message: Mapping[str, Any], received_at: datetime) -> datetime:
        if self.ts_format == "iso":
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise InvalidTick(f"ts: not ISO-8601: {text!r}") from None
            return value if value.tzinfo else value.replace(tzinfo=KST)  # naive legacy times are KST wall clock
        if self.ts_format in ("epoch_s", "epoch_ms"):
            try:
                number = float(text)
            except ValueError:
                raise InvalidTick(f"ts: not a number: {text!r}") from None
            return datetime.fromtimestamp(number / (1000 if self.ts_format == "epoch_ms" else 1), UTC)
        day = business_date(str(message.get(self.date, "")).replace("-", "")) if self.date else received_at.astimezone(KST).date()
        return kst_instant(day, text.replace(":", ""))


def pubsub_client(url: str) -> redis.Redis:
    """A client whose pub/sub connection does not silently reconnect: redis-py would
    resubscribe behind our back and the messages of the dead window would vanish unrecorded."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, decode_responses=True, retry=Retry(NoBackoff(), 0), health_check_interval=0)


@dataclass
class PubSubBridge:
    """Subscribe to ``channel`` and append every message to the stream until stopped."""

    client: redis.Redis
    channel: str
    stream: str
    mapping: FieldMapping = field(default_factory=FieldMapping)
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    listener: redis.Redis | None = None  # the pub/sub connection's client; see pubsub_client()
    stats: CollectorStats = field(default_factory=CollectorStats)
    stop_event: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    frames: FrameLimits = field(default_factory=lambda: FrameLimits(max_trades=0))  # v1 unless asked
    dlq_retention: SideRetention = field(default_factory=SideRetention)
    gaps_retention: SideRetention = field(default_factory=SideRetention)

    def __post_init__(self) -> None:
        self._alive_since = datetime.now(UTC)

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        publisher = Publisher(self.client, self.stream)
        backoff = Backoff(self.reconnect_initial_s, self.reconnect_max_s)
        down_since: datetime | None = None
        reason = ""
        while not self.stop_event.is_set():
            pubsub = (self.listener or self.client).pubsub(ignore_subscribe_messages=True)
            self._alive_since = datetime.now(UTC)
            try:
                pubsub.subscribe(self.channel)
                self.stats.connected = True
                self.subscribed.set()
                if down_since is not None:
                    self._record_gap(down_since, datetime.now(UTC), reason)
                    down_since = None
                backoff.reset()
                log.info("pubsub bridge: subscribed to %s -> %s", self.channel, self.stream)
                self._pump(pubsub, publisher)
            except redis.RedisError as exc:
                reason = f"Redis pub/sub connection lost: {type(exc).__name__}"
                if down_since is None:
                    down_since = self._alive_since
            finally:
                self.stats.connected = False
                self.subscribed.clear()
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass
            if self.stop_event.is_set():
                break
            self.stats.reconnects += 1
            wait = backoff.next()
            log.error("pubsub bridge: %s; messages published meanwhile are lost; retrying in %.1fs", reason, wait)
            self.stop_event.wait(wait)
        if down_since is not None:
            self._record_gap(down_since, datetime.now(UTC), f"{reason}; bridge stopped while disconnected")

    def _pump(self, pubsub: Any, publisher: Publisher) -> None:
        polled_at = datetime.now(UTC)
        while not self.stop_event.is_set():
            # A connection found dead in this poll may have died during the previous one:
            # the gap conservatively starts when the previous poll began.
            self._alive_since, polled_at = polled_at, datetime.now(UTC)
            message = pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            batch = [message]
            try:
                while len(batch) < 1000:  # take whatever else is already buffered
                    more = pubsub.get_message(timeout=0)
                    if more is None:
                        break
                    batch.append(more)
            finally:  # the connection may die mid-batch: what was received is still forwarded
                self._forward(batch, publisher)

    def _forward(self, batch: list[dict[str, Any]], publisher: Publisher) -> None:
        received_at = datetime.now(UTC)
        good: list[dict[str, str]] = []
        dead: list[DeadLetter] = []
        for message in batch:
            if message.get("type") != "message":
                continue
            self.stats.frames += 1
            raw = message["data"] if isinstance(message["data"], str) else message["data"].decode("utf-8", "replace")
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise InvalidTick("message is not a JSON object")
                good.append(self.mapping.to_fields(data, received_at))
            except (ValueError, InvalidTick) as exc:
                dead.append(DeadLetter("", {"raw": raw, "channel": self.channel}, f"pubsub: {exc}"))
        self._write(publisher, good, dead)

    def _write(self, publisher: Publisher, good: list[dict[str, str]], dead: list[DeadLetter]) -> None:
        """Retry until Redis takes them: these messages exist nowhere else any more."""
        backoff = Backoff(0.2, self.reconnect_max_s)
        while True:
            try:
                if good:
                    publisher.publish_collected(good, self.frames)
                    self.stats.ticks += len(good)
                    self.stats.published += len(good)
                    good = []
                if dead:
                    for letter in dead[:3]:
                        log.warning("pubsub bridge: dead letter: %s", letter.reason)
                    dead_letter(self.client, f"{self.stream}:dlq", dead, stage="collect-pubsub", retention=self.dlq_retention)
                    self.stats.parse_errors += len(dead)
                return
            except redis.RedisError as exc:
                wait = backoff.next()
                log.error("pubsub bridge: cannot append to %s (%s); retrying in %.1fs", self.stream, exc, wait)
                time.sleep(wait)  # even when stopping: these messages exist nowhere else

    def _record_gap(self, start: datetime, end: datetime, reason: str) -> None:
        gap = Gap("pubsub", (), start, end, f"{reason} (channel {self.channel})")
        self.stats.gaps += 1
        log.warning("pubsub bridge: not subscribed from %s to %s: messages of that window are lost", start.isoformat(), end.isoformat())
        backoff = Backoff(0.2, self.reconnect_max_s)
        while True:
            try:
                side_stream_add(self.client, gaps_stream(self.stream), [gap.to_fields()], self.gaps_retention)
                return
            except redis.RedisError:
                if self.stop_event.wait(backoff.next()):
                    log.error("pubsub bridge: gap %s..%s could not be recorded in Redis", start.isoformat(), end.isoformat())
                    return
