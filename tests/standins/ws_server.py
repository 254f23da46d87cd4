"""Plumbing both WebSocket stand-ins share: a real websockets server on loopback, the
connections it accepted, and the faults a test injects into them (drop, stall, raw text).
A broker's stand-in subclasses ``WsStandinServer`` and answers frames in ``_on_text``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@dataclass
class WsConn:
    ws: ServerConnection
    stalled_until: float = 0.0
    closed: bool = False

    def live(self) -> bool:
        return not self.closed and time.monotonic() >= self.stalled_until


C = TypeVar("C", bound=WsConn)


class WsStandinServer(Generic[C]):
    #: websockets logs whole frames at DEBUG and the frames carry keys/tokens; the collector
    #: tests grep the log for secrets, so a subclass names its own logger kept at INFO.
    server_log: logging.Logger
    path = ""  # URL path the broker serves its WebSocket on
    drop_code = 1011  # close code of a clean server-initiated drop

    def __init__(self, new_conn: Callable[[ServerConnection], C]):
        self._new_conn = new_conn
        self.conns: list[C] = []
        self.connections = 0
        self.received: list[str] = []  # every text frame from clients (secret checks)
        self._server: Server | None = None
        self._changed = asyncio.Event()

    # --- lifecycle
    async def start(self) -> str:
        self._server = await serve(self._handler, "127.0.0.1", 0, ping_interval=None, logger=self.server_log)
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}{self.path}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handler(self, ws: ServerConnection) -> None:
        conn = self._new_conn(ws)
        self.conns.append(conn)
        self.connections += 1
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                self.received.append(text)
                try:
                    await self._on_text(conn, text)
                except ConnectionClosed:
                    pass  # the client left while we answered; keep reading what it sent before
                self._notify()
        except ConnectionClosed:
            pass
        finally:
            conn.closed = True
            self._notify()

    async def _on_text(self, conn: C, text: str) -> None:
        raise NotImplementedError

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(self, found: Callable[[], object], timeout: float, what: str) -> None:
        """Until ``found()`` is truthy, woken by every frame and connection change."""
        deadline = time.monotonic() + timeout
        while not found():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what} within {timeout}s")
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.05))
            except TimeoutError:
                pass

    # --- faults
    async def send_raw(self, text: str) -> None:
        for conn in self.conns:
            if conn.live():
                await conn.ws.send(text)

    async def drop(self, abrupt: bool = False) -> None:
        """Server-initiated disconnect of every current connection, mid-stream."""
        for conn in self.conns:
            if conn.closed:
                continue
            conn.closed = True
            if abrupt:
                conn.ws.transport.abort()
            else:
                await conn.ws.close(code=self.drop_code, reason="server going away")

    def stall(self, seconds: float) -> None:
        """The current connections go silent for ``seconds`` (no data, no pings)."""
        until = time.monotonic() + seconds
        for conn in self.conns:
            if not conn.closed:
                conn.stalled_until = until
