"""Stand-in of Kiwoom's real-time WebSocket (LOGIN, REG/REMOVE type 0B, PING, REAL), a real
websockets server on loopback speaking the documented JSON messages.

Driven like the KIS stand-in: ``trades(n, per_message=k, venue=...)`` trades on one venue
and delivers REAL messages with up to ``k`` elements to logged-in connections that
registered the trade's item — ``005930`` for KRX, ``005930_NX`` for NXT, each venue with
its own cumulative volume, FID 9081 ``1``/``2`` — (``sent``), or keeps the trades nobody
could receive in ``lost``; ``drop``, ``stall``, ``ping``, ``send_raw``. The ``mock`` server
(KRX only, as Kiwoom's mockapi) refuses a REG holding ``_NX`` items; the refusal code is
not documented.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from websockets.exceptions import ConnectionClosed

from tickvault.core.wire import KST

from .ws_server import WsConn, WsStandinServer

SERVER_LOG = logging.getLogger("standins.kiwoom_ws")  # frames carry the token: keep them out of DEBUG logs
SERVER_LOG.setLevel(logging.INFO)


SUFFIX = {"KRX": "", "NXT": "_NX"}
EXCHANGE_CODE = {"KRX": "1", "NXT": "2"}  # FID 9081 거래소구분
MOCK_NXT_REFUSAL = (105110, "모의투자에서는 KRX 종목만 등록할 수 있습니다")


@dataclass
class Trade:
    symbol: str
    ts: datetime
    price: int
    volume: int
    cum_volume: int
    side: str  # 'B' / 'S'
    venue: str = "KRX"

    @property
    def key(self) -> tuple[str, datetime, int]:
        return (self.symbol, self.ts, self.cum_volume)

    @property
    def venue_key(self) -> tuple[str, str, datetime, int]:
        return (self.venue, self.symbol, self.ts, self.cum_volume)

    @property
    def item(self) -> str:
        return self.symbol + SUFFIX[self.venue]


def real_element(t: Trade, prev_close: int, exchange_code: str | None = None) -> dict:
    sign = "+" if t.price >= prev_close else "-"
    return {
        "type": "0B",
        "name": "주식체결",
        "item": t.item,
        "values": {
            "20": t.ts.strftime("%H%M%S"),
            "10": f"{sign}{t.price}",
            "11": f"{sign}{abs(t.price - prev_close)}",
            "12": "+0.16",
            "27": f"{sign}{t.price + 100}",
            "28": f"{sign}{t.price}",
            "15": f"{'+' if t.side == 'B' else '-'}{t.volume}",
            "13": str(t.cum_volume),
            "14": str(t.cum_volume * t.price // 1_000_000),
            "16": f"{sign}{prev_close}",
            "17": f"{sign}{t.price + 500}",
            "18": f"-{prev_close - 500}",
            "290": "2",
            "9081": exchange_code or EXCHANGE_CODE[t.venue],
        },
    }


@dataclass
class Conn(WsConn):
    logged_in: bool = False
    items: set[str] = field(default_factory=set)


class KiwoomWsStandin(WsStandinServer[Conn]):
    server_log = SERVER_LOG
    path = "/api/dostk/websocket"
    drop_code = 1001

    def __init__(self, symbols: Sequence[str], *, max_items: int = 100, valid_token: Callable[[str], bool] = bool, seed: int = 11,
                 nxt_symbols: Sequence[str] = (), mock: bool = False):
        super().__init__(Conn)
        self.symbols = list(symbols)
        self.nxt_symbols = list(nxt_symbols)
        self.mock = mock
        self.max_items = max_items
        self.valid_token = valid_token
        self.rng = random.Random(seed)
        self.cum = {("KRX", s): 0 for s in self.symbols} | {("NXT", s): 0 for s in self.nxt_symbols}
        self.price = {s: 20_000 + 50 * i for i, s in enumerate(self.symbols)}
        self.prev_close = dict(self.price)
        self.sent: list[Trade] = []
        self.lost: list[Trade] = []
        self.pongs = 0
        self.removes = 0
        self.logins_refused = 0
        self.regs_refused = 0

    async def _on_text(self, conn: Conn, text: str) -> None:
        msg = json.loads(text)
        trnm = msg.get("trnm")
        if trnm == "PING":
            self.pongs += 1
        elif trnm == "LOGIN":
            if self.valid_token(msg.get("token", "")):
                conn.logged_in = True
                await conn.ws.send(json.dumps({"trnm": "LOGIN", "return_code": 0, "return_msg": ""}))
            else:
                self.logins_refused += 1
                await conn.ws.send(json.dumps({"trnm": "LOGIN", "return_code": 100013, "return_msg": "인증에 실패했습니다"}))
        elif not conn.logged_in:
            await conn.ws.send(json.dumps({"trnm": trnm, "return_code": 100001, "return_msg": "로그인이 필요합니다"}))
        elif trnm == "REG":
            items = {i for d in msg.get("data", []) for i in d.get("item", []) if "0B" in d.get("type", [])}
            if self.mock and any(i.endswith("_NX") for i in items):
                self.regs_refused += 1
                await conn.ws.send(json.dumps({"trnm": "REG", "return_code": MOCK_NXT_REFUSAL[0], "return_msg": MOCK_NXT_REFUSAL[1]}))
            elif len(conn.items | items) > self.max_items:
                self.regs_refused += 1
                await conn.ws.send(json.dumps({"trnm": "REG", "return_code": 105109, "return_msg": "실시간 등록 한도를 초과했습니다"}))
            else:
                conn.items |= items
                await conn.ws.send(json.dumps({"trnm": "REG", "return_code": 0, "return_msg": ""}))
        elif trnm == "REMOVE":
            self.removes += 1
            conn.items -= {i for d in msg.get("data", []) for i in d.get("item", [])}
            await conn.ws.send(json.dumps({"trnm": "REMOVE", "return_code": 0, "return_msg": ""}))

    # --- test controls
    def items(self) -> set[str]:
        """Every item this exchange trades: ``CODE`` for KRX, ``CODE_NX`` for NXT."""
        return {symbol + SUFFIX[venue] for venue, symbol in self.cum}

    def registered_conn(self, newer_than: int = 0) -> Conn | None:
        for conn in self.conns[newer_than:]:
            if conn.live() and self.items() <= conn.items:
                return conn
        return None

    async def wait_registered(self, newer_than: int = 0, timeout: float = 10.0) -> None:
        await self._wait_until(lambda: self.registered_conn(newer_than), timeout, f"no connection registered {sorted(self.items())}")

    def make_trade(self, symbol: str, venue: str = "KRX") -> Trade:
        volume = self.rng.randint(1, 300)
        self.cum[(venue, symbol)] += volume
        self.price[symbol] += self.rng.choice((-50, 0, 50))
        return Trade(symbol, datetime.now(KST).replace(microsecond=0), self.price[symbol], volume, self.cum[(venue, symbol)],
                     self.rng.choice("BS"), venue)

    async def trades(self, n: int, per_message: int = 1, venue: str = "KRX") -> None:
        """``n`` trades on ``venue`` round-robin over its symbols, up to ``per_message`` REAL elements per message."""
        symbols = self.symbols if venue == "KRX" else self.nxt_symbols
        made = [self.make_trade(symbols[i % len(symbols)], venue) for i in range(n)]
        for start in range(0, len(made), per_message):
            await self._deliver(made[start : start + per_message])

    async def _deliver(self, trades: list[Trade]) -> None:
        for conn in self.conns:
            if not conn.live():
                continue
            mine = [t for t in trades if t.item in conn.items]
            if not mine:
                continue
            message = json.dumps({"trnm": "REAL", "data": [real_element(t, self.prev_close[t.symbol]) for t in mine]}, ensure_ascii=False)
            try:
                await conn.ws.send(message)
            except ConnectionClosed:
                conn.closed = True
                continue
            self.sent.extend(mine)
            trades = [t for t in trades if t not in mine]
        self.lost.extend(trades)

    async def ping(self) -> None:
        for conn in self.conns:
            if conn.live():
                await conn.ws.send(json.dumps({"trnm": "PING"}))
