"""Shared machinery of the broker REST stand-ins: a real HTTP server on loopback in a thread,
the truth day indexed per symbol, tokens that can be expired on demand, a per-app-key
sliding-window rate limit, and counters of calls and of refused (rate) calls."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

from tickvault.core.wire import KST


@dataclass(frozen=True)
class TruthTrade:
    ts: datetime  # KST, whole seconds
    price: int
    volume: int
    cum_volume: int


def index_truth(truth: pa.Table, venue: str = "KRX") -> dict[str, list[TruthTrade]]:
    """symbol -> its trades on ``venue`` ordered by cumulative volume (the exchange's order)."""
    out: dict[str, list[TruthTrade]] = {}
    rows = truth.select(["venue", "symbol", "ts", "price", "volume", "cum_volume"]).to_pylist()
    for r in rows:
        if r["venue"] != venue:
            continue
        out.setdefault(r["symbol"], []).append(
            TruthTrade(r["ts"].astimezone(KST).replace(microsecond=0), int(r["price"]), int(r["volume"]), int(r["cum_volume"]))
        )
    for trades in out.values():
        trades.sort(key=lambda t: t.cum_volume)
    return out


@dataclass
class Reply:
    status: int
    body: Any  # dict -> JSON, str -> text
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any


class RateWindow:
    """At most ``limit`` calls per app key in any one-second window (sliding)."""

    def __init__(self, limit: float):
        self.limit = limit
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - 1.0:
                calls.popleft()
            if len(calls) >= self.limit:
                return False
            calls.append(now)
            return True


class StandinServer:
    """Base class: subclasses implement ``handle(request) -> Reply``."""

    def __init__(self, truth: pa.Table, day: date, rate_limit: float):
        self.trades = index_truth(truth)  # KRX
        self.venue_trades = {"KRX": self.trades, "NXT": index_truth(truth, "NXT")}
        self.day = day
        self.rate = RateWindow(rate_limit)
        self.calls = 0  # data calls answered (any outcome)
        self.calls_by_api: dict[str, int] = {}
        self.rejected = 0  # calls refused for exceeding the rate limit
        self.injected_rate_errors = 0  # rate errors planted by the test (not the client's fault)
        self.token_issues = 0
        self.requests_log: list[Request] = []  # every request as received (tests inspect headers)
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._inject_rate = 0
        self._scheduled: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- test controls
    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (the next call must re-issue)."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def fail_next_calls_with_rate_limit(self, n: int = 1) -> None:
        with self._lock:
            self._inject_rate += n

    def reset_counters(self) -> None:
        with self._lock:
            self.calls = 0
            self.calls_by_api = {}
            self.rejected = 0
            self.injected_rate_errors = 0

    # --- helpers for subclasses
    def new_token(self, lifetime_s: float = 86400) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + lifetime_s
            self.token_issues += 1
        return token

    def token_state(self, token: str) -> str:
        """"ok", "expired" or "unknown"."""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            return "unknown"
        return "ok" if time.monotonic() < expiry else "expired"

    def at_call(self, n: int, action: str) -> None:
        """Before answering data call number ``n`` (counted from now): "expire" every token,
        or answer with a "rate" error once (a mid-run surprise for the client)."""
        with self._lock:
            self._scheduled.append((self.calls + n, action))

    def count_call(self, api: str) -> None:
        due: list[str] = []
        with self._lock:
            self.calls += 1
            self.calls_by_api[api] = self.calls_by_api.get(api, 0) + 1
            due = [a for at, a in self._scheduled if at == self.calls]
            self._scheduled = [(at, a) for at, a in self._scheduled if at != self.calls]
        for action in due:
            if action == "expire":
                self.expire_tokens()
            elif action == "rate":
                self.fail_next_calls_with_rate_limit(1)

    def take_injected_rate_error(self) -> bool:
        with self._lock:
            if self._inject_rate > 0:
                self._inject_rate -= 1
                self.injected_rate_errors += 1
                return True
        return False

    def reject_for_rate(self, key: str) -> bool:
        if self.rate.admit(key):
            return False
        with self._lock:
            self.rejected += 1
        return True

    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- lifecycle
    def start(self) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                request = Request(self.command, parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body)
                standin.requests_log.append(request)
                try:
                    reply = standin.handle(request)
                except Exception as exc:  # noqa: BLE001 - a stand-in bug must show up, not hang the client
                    reply = Reply(500, {"error": f"stand-in crashed: {type(exc).__name__}: {exc}"})
                if isinstance(reply.body, str):
                    data = reply.body.encode()
                    ctype = "text/plain; charset=utf-8"
                else:
                    data = json.dumps(reply.body, ensure_ascii=False).encode()
                    ctype = "application/json; charset=utf-8"
                self.send_response(reply.status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandinServer:
        self.url = self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def minute_bars(trades: list[TruthTrade]) -> list[dict[str, Any]]:
    """Minute bars (start-labelled) of a trade list, oldest first."""
    bars: dict[datetime, dict[str, Any]] = {}
    for t in trades:
        minute = t.ts.replace(second=0)
        bar = bars.get(minute)
        if bar is None:
            bars[minute] = {"minute": minute, "open": t.price, "high": t.price, "low": t.price, "close": t.price, "volume": t.volume,
                            "turnover": t.price * t.volume, "cum": t.cum_volume}
        else:
            bar["high"] = max(bar["high"], t.price)
            bar["low"] = min(bar["low"], t.price)
            bar["close"] = t.price
            bar["volume"] += t.volume
            bar["turnover"] += t.price * t.volume
            bar["cum"] = t.cum_volume
    return [bars[m] for m in sorted(bars)]


def make_truth_day(day: date, symbols: list[str], trades_per_symbol: int, seed: int = 7) -> pa.Table:
    """A small deterministic trading day (TICK_SCHEMA): trades between 09:00 and 15:20 plus a
    closing-auction print at 15:30, bursts of several trades in one second, and identical
    trades (same second, price and volume) that only the cumulative volume tells apart."""
    import random
    from decimal import Decimal

    from tickvault.core.wire import TICK_SCHEMA, UTC

    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {name: [] for name in TICK_SCHEMA.names}
    open_at = datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST)
    session = 6 * 3600 + 20 * 60
    for n, symbol in enumerate(symbols):
        price = 50_000 + 1000 * n
        cum = 0
        seconds = sorted(rng.randrange(session) for _ in range(trades_per_symbol * 2 // 3))
        stamps: list[int] = []
        for s in seconds:
            stamps.append(s)
            if rng.random() < 0.3:
                stamps.extend([s] * rng.randint(1, 3))  # a burst in one second
        stamps = stamps[: trades_per_symbol - 1]
        last: tuple[int, int] | None = None
        for s in stamps:
            if last is not None and rng.random() < 0.3:
                px, vol = last  # repeat the previous trade exactly
            else:
                px = max(100, price + 100 * rng.randint(-2, 2))
                vol = rng.choice([1, 1, 2, 5, 10, 13, 50, 100])
            price = px
            last = (px, vol)
            cum += vol
            ts = open_at + timedelta(seconds=s)
            for name, value in (("symbol", symbol), ("ts", ts.astimezone(UTC)), ("price", Decimal(px)), ("volume", vol),
                                ("cum_volume", cum), ("side", rng.choice(["B", "S"])), ("source", "sim"), ("received_at", None)):
                cols[name].append(value)
        # the closing auction: one print at 15:30:00
        vol = rng.choice([100, 250, 1000])
        cum += vol
        close_ts = datetime(day.year, day.month, day.day, 15, 30, tzinfo=KST)
        for name, value in (("symbol", symbol), ("ts", close_ts.astimezone(UTC)), ("price", Decimal(price)), ("volume", vol),
                            ("cum_volume", cum), ("side", None), ("source", "sim"), ("received_at", None)):
            cols[name].append(value)
    cols["venue"] = ["KRX"] * len(cols["symbol"])
    return pa.table({name: cols[name] for name in TICK_SCHEMA.names}, schema=TICK_SCHEMA)


def make_nxt_truth(day: date, symbols: list[str], trades_per_symbol: int, seed: int = 97) -> pa.Table:
    """The same kind of day on NXT: its own trades and its own cumulative volume per symbol."""
    krx_shaped = make_truth_day(day, symbols, trades_per_symbol, seed)
    venue = krx_shaped.schema.get_field_index("venue")
    return krx_shaped.set_column(venue, krx_shaped.schema.field(venue), pa.array(["NXT"] * krx_shaped.num_rows, pa.string()))
