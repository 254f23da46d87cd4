"""One broker WebSocket session, kept alive: connect, log in/subscribe, receive, and on any
loss (server close, network error, stall) record the gap and reconnect with jittered
backoff. Subclasses only speak their broker's protocol (``on_open``, ``on_message``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import websockets
from websockets.asyncio.client import ClientConnection, connect

from ...core.config import MARKET_HOURS, SessionHours
from ...core.wire import UTC
from ..brokers.errors import BrokerError
from .base import (
    WIRE_LOG,
    Backoff,
    CollectorStats,
    FatalCollectorError,
    GapTracker,
    Outbox,
    Pair,
    SessionClock,
    SessionLost,
    from_epoch,
)

log = logging.getLogger(__name__)


@dataclass
class WsOptions:
    url: str
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    stall_s: float = 60.0
    session_hours: SessionHours = MARKET_HOURS
    ack_timeout_s: float = 15.0
    open_timeout_s: float = 10.0


class WsSession:
    """Base of the KIS and Kiwoom sessions. ``ready`` means every (venue, symbol) pair is subscribed."""

    source = "ws"

    def __init__(self, name: str, pairs: Sequence[Pair], options: WsOptions, outbox: Outbox, stats: CollectorStats):
        self.name = name
        self.pairs = tuple(pairs)
        self.options = options
        self.outbox = outbox
        self.stats = stats
        self.clock = SessionClock(options.session_hours, {venue for venue, _ in self.pairs})
        self.gaps = GapTracker(self.source, self.pairs, outbox)
        self.ready = False
        self.sessions = 0  # connections that became ready (tests, logs)
        self._last_frame: float | None = None

    # --- protocol hooks
    async def on_open(self, ws: ClientConnection) -> None:
        raise NotImplementedError

    async def on_message(self, ws: ClientConnection, text: str, received_at: datetime) -> None:
        raise NotImplementedError

    async def on_close(self, ws: ClientConnection) -> None:
        """Best-effort goodbye (unsubscribe) on a clean stop."""

    def mark_ready(self) -> None:
        if not self.ready:
            self.ready = True
            self.sessions += 1
            self.gaps.resumed()
            log.info("%s: subscribed to %d (venue, symbol) pair(s)", self.name, len(self.pairs))

    # --- the keep-alive loop
    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.options.reconnect_initial_s, self.options.reconnect_max_s)
        while not stop.is_set():
            self.ready = False
            connected_at = time.time()
            reason = ""
            try:
                await self._serve(stop)
            except FatalCollectorError:
                self.gaps.lost(from_epoch(self._last_frame or connected_at), "collector stopped on a fatal error")
                self.gaps.close_on_stop()
                raise
            except SessionLost as exc:
                reason = str(exc)
            except websockets.ConnectionClosed as exc:
                reason = f"connection closed by the server ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            except (TimeoutError, OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
                reason = f"cannot connect: {type(exc).__name__}: {exc}"
            except BrokerError as exc:  # approval key / token not issued; its message is scrubbed of secrets
                reason = f"broker credential: {exc}"
            except Exception as exc:
                log.exception("%s: unexpected error in the session", self.name)
                reason = f"unexpected {type(exc).__name__}"
            finally:
                self.stats.connected = False
            if stop.is_set():
                break  # a clean stop is not a gap (a gap already open is closed below)
            if self.ready:
                backoff.reset()
                self.gaps.lost(from_epoch(self._last_frame or connected_at), reason)
            self.stats.reconnects += 1
            wait = backoff.next()
            log.warning("%s: session lost (%s); reconnecting in %.1fs", self.name, reason, wait)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass
        self.gaps.close_on_stop()

    async def _serve(self, stop: asyncio.Event) -> None:
        async with connect(
            self.options.url,
            logger=WIRE_LOG,
            open_timeout=self.options.open_timeout_s,
            ping_interval=None,  # brokers use their own heartbeats (PINGPONG, PING); the watchdog covers silence
            max_size=2**22,
            max_queue=None,
        ) as ws:
            self.stats.connected = True
            self._last_frame = time.time()
            await self.on_open(ws)
            ack_deadline = time.monotonic() + self.options.ack_timeout_s
            poll = max(0.05, min(1.0, self.options.stall_s / 4))
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout=poll)
                except TimeoutError:
                    self._check_timers(ack_deadline)
                    continue
                self._last_frame = time.time()
                self.stats.frames += 1
                self.stats.last_frame_at = self._last_frame
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                try:
                    await self.on_message(ws, text, datetime.now(UTC))
                except (FatalCollectorError, SessionLost, websockets.ConnectionClosed):
                    raise
                except Exception as exc:  # noqa: BLE001 - a frame we cannot handle goes to the DLQ
                    self.outbox.dead(text, f"{self.source}: cannot handle frame: {type(exc).__name__}: {exc}")
                self._check_timers(ack_deadline)
            try:
                await asyncio.wait_for(self.on_close(ws), timeout=2.0)
            except Exception:  # noqa: BLE001 - goodbye is best effort
                pass

    def _check_timers(self, ack_deadline: float) -> None:
        if not self.ready and time.monotonic() > ack_deadline:
            raise SessionLost(f"subscription not acknowledged within {self.options.ack_timeout_s:.0f}s")
        silent = time.time() - (self._last_frame or time.time())
        if silent > self.options.stall_s and self.clock.in_session():
            raise SessionLost(f"stall: no frame for {silent:.1f}s during the session (watchdog {self.options.stall_s:g}s)")


async def run_sessions(sessions: Sequence[WsSession], outbox: Outbox, stop: asyncio.Event) -> None:
    """Run sessions and the outbox writer until ``stop``; a fatal error stops everything
    (after the outbox is flushed) and is re-raised for the CLI to report."""
    writer_stop = asyncio.Event()
    writer = asyncio.create_task(outbox.run(writer_stop))
    tasks = [asyncio.create_task(s.run(stop), name=s.name) for s in sessions]
    error: BaseException | None = None
    try:
        for next_done in asyncio.as_completed(tasks):
            try:
                await next_done
            except FatalCollectorError as exc:
                error = error or exc
                stop.set()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer_stop.set()
        await writer
    if error is not None:
        raise error
