"""Stand-in of KIS's real-time WebSocket server (H0STCNT0 for KRX, H0NXCNT0 for NXT), a
real websockets server on loopback speaking the documented formats.

The test drives it: ``trades(n, venue=...)`` makes one venue trade (KST wall clock,
cumulative volume per (venue, symbol): each venue counts its own) and delivers each trade
to the connections subscribed to (that venue's tr_id, symbol), packed into multi-record
frames of the same 46 fields; a trade nobody could receive (no subscribed connection, or
the connection is stalled) is kept in ``lost``, a delivered one in ``sent``. NXT trades
only the ``nxt_symbols``; a ``paper`` server refuses H0NXCNT0 (KIS: NXT feeds are not
available on paper accounts; the exact refusal code is not documented). Faults: ``drop()``
closes connections mid-stream, ``stall(s)`` silences the current connections for ``s``
seconds while the exchange keeps trading, ``send_raw`` sends any text.
"""

from __future__ import annotations

import json
import logging
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from websockets.exceptions import ConnectionClosed

from tickvault.core.wire import KST
from tickvault.services.collectors.kis import aes_encrypt

from .ws_server import WsConn, WsStandinServer

#: websockets logs whole frames at DEBUG; the collector tests grep the log for secrets, so
#: the stand-in's own frame log (which sees the approval key) stays at INFO.
SERVER_LOG = logging.getLogger("standins.kis_ws")
SERVER_LOG.setLevel(logging.INFO)


TR_IDS = {"KRX": "H0STCNT0", "NXT": "H0NXCNT0"}
PAPER_NXT_REFUSAL = ("OPSP0009", "모의투자 미지원 서비스입니다 (NXT)")


@dataclass
class Trade:
    symbol: str
    ts: datetime  # KST, whole second
    price: int
    volume: int
    cum_volume: int
    side_code: str  # field 22: CCLD_DVSN (KRX) / CNTG_CLS_CODE (NXT): 1 buy, 5 sell, 3 pre-market
    venue: str = "KRX"

    @property
    def key(self) -> tuple[str, datetime, int]:
        return (self.symbol, self.ts, self.cum_volume)

    @property
    def venue_key(self) -> tuple[str, str, datetime, int]:
        return (self.venue, self.symbol, self.ts, self.cum_volume)


def record_fields(t: Trade) -> list[str]:
    """46 fields in the documented order; the ones the collector ignores get plausible values."""
    f = [""] * 46
    f[0], f[1], f[2] = t.symbol, t.ts.strftime("%H%M%S"), str(t.price)
    f[3], f[4], f[5], f[6] = "2", "100", "0.16", str(t.price)
    f[7] = f[8] = f[9] = f[10] = f[11] = str(t.price)
    f[12], f[13], f[14] = str(t.volume), str(t.cum_volume), str(t.cum_volume * t.price)
    f[15], f[16], f[17], f[18], f[19], f[20] = "10", "12", "2", "100.5", "1000", "1100"
    f[21], f[22], f[23] = t.side_code, "0.45", "63.03"
    f[24], f[25], f[26], f[27], f[28], f[29], f[30], f[31], f[32] = "090013", "3", "0", "090646", "5", "-300", "100741", "2", "400"
    f[33], f[34], f[35] = t.ts.strftime("%Y%m%d"), "20", "N"
    f[36], f[37], f[38], f[39], f[40] = "71292", "244009", "2795345", "2044512", "0.16"
    f[41], f[42], f[43], f[44], f[45] = "5367918", "180.61", "0", "", str(t.price)
    return f


def data_frame(trades: Sequence[Trade], cipher: tuple[str, str] | None = None) -> str:
    """One frame of same-venue trades under that venue's tr_id."""
    tr_id = TR_IDS[trades[0].venue]
    payload = "^".join(v for t in trades for v in record_fields(t))
    if cipher is not None:
        return f"1|{tr_id}|{len(trades):03d}|{aes_encrypt(cipher[0], cipher[1], payload)}"
    return f"0|{tr_id}|{len(trades):03d}|{payload}"


def _ack(tr_id: str, tr_key: str, code: str, msg: str, rt_cd: str = "0", output: dict | None = None) -> str:
    body: dict = {"rt_cd": rt_cd, "msg_cd": code, "msg1": msg}
    if output is not None:
        body["output"] = output
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})


@dataclass
class Conn(WsConn):
    subs: set[tuple[str, str]] = field(default_factory=set)  # (tr_id, symbol)


def registration(pair: str | tuple[str, str]) -> tuple[str, str]:
    """(tr_id, symbol) of a plain symbol (KRX) or a (venue, symbol) pair."""
    venue, symbol = ("KRX", pair) if isinstance(pair, str) else pair
    return (TR_IDS[venue], symbol)


class KisWsStandin(WsStandinServer[Conn]):
    server_log = SERVER_LOG
    drop_code = 1011

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        max_subscriptions: int = 41,
        valid_key: Callable[[str], bool] = bool,
        seed: int = 7,
        nxt_symbols: Sequence[str] = (),
        paper: bool = False,
    ):
        super().__init__(Conn)
        self.symbols = list(symbols)
        self.nxt_symbols = list(nxt_symbols)
        self.paper = paper
        self.max_subscriptions = max_subscriptions
        self.valid_key = valid_key
        self.rng = random.Random(seed)
        alphabet = string.ascii_letters + string.digits
        self.cipher = ("".join(self.rng.choice(alphabet) for _ in range(32)), "".join(self.rng.choice(alphabet) for _ in range(16)))
        self.cum = {("KRX", s): 0 for s in self.symbols} | {("NXT", s): 0 for s in self.nxt_symbols}
        self.price = {s: 50_000 + 100 * i for i, s in enumerate(self.symbols)}
        self.sent: list[Trade] = []
        self.lost: list[Trade] = []
        self.pongs = 0
        self.refused: list[tuple[str, str]] = []  # (symbol, msg_cd)
        self.unsubscribes = 0

    async def _on_text(self, conn: Conn, text: str) -> None:
        msg = json.loads(text)
        header = msg.get("header", {})
        if header.get("tr_id") == "PINGPONG":
            self.pongs += 1
            return
        tr = msg["body"]["input"]
        tr_id, symbol = tr["tr_id"], tr["tr_key"]
        key = (tr_id, symbol)
        if not self.valid_key(header.get("approval_key", "")):
            await conn.ws.send(_ack(tr_id, symbol, "OPSP0011", "invalid approval : NOT FOUND", rt_cd="1"))
            return
        if header.get("tr_type") == "2":
            self.unsubscribes += 1
            if key in conn.subs:
                conn.subs.discard(key)
                await conn.ws.send(_ack(tr_id, symbol, "OPSP0001", "UNSUBSCRIBE SUCCESS"))
            else:
                await conn.ws.send(_ack(tr_id, symbol, "OPSP0003", "UNSUBSCRIBE ERROR(not found!)", rt_cd="1"))
            return
        if tr_id not in TR_IDS.values():
            self.refused.append((symbol, "OPSP0009"))
            await conn.ws.send(_ack(tr_id, symbol, "OPSP0009", "INVALID tr_id", rt_cd="1"))
        elif tr_id == TR_IDS["NXT"] and self.paper:
            self.refused.append((symbol, PAPER_NXT_REFUSAL[0]))
            await conn.ws.send(_ack(tr_id, symbol, PAPER_NXT_REFUSAL[0], PAPER_NXT_REFUSAL[1], rt_cd="1"))
        elif key in conn.subs:
            await conn.ws.send(_ack(tr_id, symbol, "OPSP0002", "ALREADY IN SUBSCRIBE", rt_cd="1"))
        elif len(conn.subs) >= self.max_subscriptions:
            self.refused.append((symbol, "OPSP0008"))
            await conn.ws.send(_ack(tr_id, symbol, "OPSP0008", "MAX SUBSCRIBE OVER", rt_cd="1"))
        elif symbol not in self.price:
            self.refused.append((symbol, "OPSP0009"))
            await conn.ws.send(_ack(tr_id, symbol, "OPSP0009", "INVALID tr_key", rt_cd="1"))
        else:
            conn.subs.add(key)  # an NXT registration of a symbol NXT does not trade is accepted and stays silent
            await conn.ws.send(_ack(tr_id, symbol, "OPSP0000", "SUBSCRIBE SUCCESS", output={"iv": self.cipher[1], "key": self.cipher[0]}))

    # --- test controls
    def subscribed_conn(self, pairs: Sequence[str | tuple[str, str]], newer_than: int = 0) -> Conn | None:
        """A live connection holding every pair (a plain symbol means its KRX registration)."""
        wanted = {registration(p) for p in pairs}
        for conn in self.conns[newer_than:]:
            if conn.live() and wanted <= conn.subs:
                return conn
        return None

    def all_subscriptions(self) -> set[tuple[str, str]]:
        return {key for conn in self.conns if conn.live() for key in conn.subs}

    async def wait_subscribed(self, pairs: Sequence[str | tuple[str, str]] | None = None, newer_than: int = 0, timeout: float = 10.0) -> None:
        """Until a live connection (the ``newer_than``-th or later) holds all ``pairs``
        (default: every symbol on KRX and every NXT symbol on NXT)."""
        wanted = list(self.cum) if pairs is None else pairs
        await self._wait_until(lambda: self.subscribed_conn(wanted, newer_than), timeout, f"no connection subscribed to {wanted}")

    def make_trade(self, symbol: str, venue: str = "KRX") -> Trade:
        volume = self.rng.randint(1, 500)
        self.cum[(venue, symbol)] += volume
        self.price[symbol] += self.rng.choice((-100, 0, 100))
        return Trade(symbol, datetime.now(KST).replace(microsecond=0), self.price[symbol], volume, self.cum[(venue, symbol)],
                     self.rng.choice("1553"), venue)

    async def trades(self, n: int, per_frame: int = 1, encrypt: bool = False, venue: str = "KRX") -> None:
        """``n`` trades on ``venue`` round-robin over its symbols; up to ``per_frame`` same-symbol trades per frame."""
        symbols = self.symbols if venue == "KRX" else self.nxt_symbols
        made: dict[str, list[Trade]] = {}
        for i in range(n):
            symbol = symbols[i % len(symbols)]
            made.setdefault(symbol, []).append(self.make_trade(symbol, venue))
        for trades in made.values():
            for start in range(0, len(trades), per_frame):
                await self._deliver(trades[start : start + per_frame], encrypt)

    async def _deliver(self, trades: list[Trade], encrypt: bool) -> None:
        key = (TR_IDS[trades[0].venue], trades[0].symbol)
        targets = [c for c in self.conns if c.live() and key in c.subs]
        frame = data_frame(trades, self.cipher if encrypt else None)
        delivered = False
        for conn in targets:
            try:
                await conn.ws.send(frame)
                delivered = True
            except ConnectionClosed:
                conn.closed = True
        (self.sent if delivered else self.lost).extend(trades)

    async def pingpong(self) -> None:
        text = json.dumps({"header": {"tr_id": "PINGPONG", "datetime": datetime.now(KST).strftime("%Y%m%d%H%M%S")}})
        for conn in self.conns:
            if conn.live():
                await conn.ws.send(text)
