"""Kiwoom real-time trades (type 0B) over Kiwoom's REST-API WebSocket, both venues.

Protocol (Kiwoom REST API, see docs/collectors.md): ``LOGIN`` with the REST token, wait for
``return_code`` 0, ``REG`` the items for type ``0B``, echo every ``PING`` unchanged, and
read ``REAL`` messages whose ``values`` are keyed by FID. The item names the venue: ``005930``
is KRX, ``005930_NX`` is NXT (``_AL``, smart order routing, is not a venue and never
registered). FID ``9081`` (거래소구분, 1 = KRX, 2 = NXT) is checked against the item's venue
when present: a contradiction is dead-lettered and counted, never published under a guess.
Prices and volumes carry a sign (direction of the price change / of the trade), so
magnitudes are taken and the volume's sign becomes the side. Messages carry no date: the
business date is the KST date of the session (NXT's after-market ends at 20:00 KST).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from ...core.wire import KST, InvalidTick, Venue, parse_venue_symbol
from .base import CollectorStats, FatalCollectorError, Outbox, Pair, SessionLost
from .mapping import kst_instant, make_tick, unsigned_decimal, unsigned_int
from .ws import WsOptions, WsSession

log = logging.getLogger(__name__)

REAL_TYPE = "0B"
FID_TIME, FID_PRICE, FID_VOLUME, FID_CUM_VOLUME = "20", "10", "15", "13"
FID_EXCHANGE, FID_SESSION = "9081", "290"  # 거래소구분, 장구분 (1 장전시간외, 2 장중, 3 장후시간외)
#: FID 9081 values: 1 seen for KRX items in Kiwoom's spec, 2 for NXT items in third-party fixtures.
EXCHANGE_CODES: dict[str, Venue] = {"1": "KRX", "2": "NXT"}
ITEM_SUFFIX: dict[Venue, str] = {"KRX": "", "NXT": "_NX"}


class VenueMismatch(InvalidTick):
    """A REAL element whose own exchange field contradicts the item's venue."""


def item_of(pair: Pair) -> str:
    """The 0B item of a (venue, symbol) pair: ``005930`` (KRX), ``005930_NX`` (NXT)."""
    venue, symbol = pair
    return symbol + ITEM_SUFFIX[venue]


def login_message(token: str) -> str:
    return json.dumps({"trnm": "LOGIN", "token": token})


def register_message(symbols: Sequence[str], grp_no: str = "1") -> str:
    return json.dumps({"trnm": "REG", "grp_no": grp_no, "refresh": "1", "data": [{"item": list(symbols), "type": [REAL_TYPE]}]})


def remove_message(symbols: Sequence[str], grp_no: str = "1") -> str:
    return json.dumps({"trnm": "REMOVE", "grp_no": grp_no, "data": [{"item": list(symbols), "type": [REAL_TYPE]}]})


def side_of(volume_text: str) -> str | None:
    text = volume_text.strip()
    if text.startswith("+"):
        return "B"
    if text.startswith("-"):
        return "S"
    return None


def real_to_fields(item: Mapping, received_at: datetime, source: str = "kiwoom") -> dict[str, str]:
    """One element of a REAL message's ``data`` -> wire fields (raises InvalidTick)."""
    values = item.get("values")
    if not isinstance(values, Mapping):
        raise InvalidTick("REAL element without a 'values' object")
    missing = [f for f in (FID_TIME, FID_PRICE, FID_VOLUME, FID_CUM_VOLUME) if not values.get(f)]
    if missing:
        raise InvalidTick(f"0B values missing FID(s) {', '.join(missing)}")
    venue, symbol = parse_venue_symbol("", str(item.get("item", "")))
    exchange = str(values.get(FID_EXCHANGE) or "").strip()
    if exchange and EXCHANGE_CODES.get(exchange) != venue:
        named = EXCHANGE_CODES.get(exchange, f"an unknown exchange code {exchange!r}")
        raise VenueMismatch(f"venue mismatch: item {item.get('item')!r} is {venue} but FID 9081 (거래소구분) says {named} "
                            f"(FID 290 장구분 {values.get(FID_SESSION, '-')!s}); not published under a guess")
    volume_text = str(values[FID_VOLUME])
    return make_tick(
        venue=venue,
        symbol=symbol,
        ts=kst_instant(received_at.astimezone(KST).date(), str(values[FID_TIME])),
        price=unsigned_decimal(str(values[FID_PRICE]), "price"),
        volume=unsigned_int(volume_text, "volume"),
        cum_volume=unsigned_int(str(values[FID_CUM_VOLUME]), "cum_volume"),
        side=side_of(volume_text),
        source=source,
        received_at=received_at,
    )


class KiwoomSession(WsSession):
    source = "kiwoom"

    def __init__(
        self,
        name: str,
        pairs: Sequence[Pair],
        token: Callable[[], str],
        options: WsOptions,
        outbox: Outbox,
        stats: CollectorStats,
    ):
        super().__init__(name, pairs, options, outbox, stats)
        self._token = token
        self.items = [item_of(pair) for pair in self.pairs]

    async def on_open(self, ws) -> None:
        token = await asyncio.to_thread(self._token)
        await ws.send(login_message(token))

    async def on_close(self, ws) -> None:
        await ws.send(remove_message(self.items))

    async def on_message(self, ws, text: str, received_at: datetime) -> None:
        try:
            message = json.loads(text)
            trnm = message["trnm"]
        except (ValueError, KeyError, TypeError) as exc:
            self.outbox.dead(text, f"kiwoom: unreadable message: {type(exc).__name__}: {exc}")
            return
        if trnm == "PING":
            await ws.send(text)
        elif trnm == "REAL":
            self._real(message, text, received_at)
        elif trnm == "LOGIN":
            if _code(message) != 0:
                invalidate = getattr(self._token, "invalidate", None)
                if invalidate is not None:
                    invalidate()  # an expired or revoked token: the next LOGIN gets a fresh one
                raise SessionLost(f"Kiwoom LOGIN refused: {_code(message)} {message.get('return_msg', '')}".strip())
            await ws.send(register_message(self.items))
        elif trnm == "REG":
            if _code(message) != 0:
                nxt = sum(1 for v, _ in self.pairs if v == "NXT")
                raise FatalCollectorError(
                    f"Kiwoom refused REG of {len(self.items)} items ({nxt} NXT): {_code(message)} {message.get('return_msg', '')}; "
                    "check the symbols, TICKVAULT_KIWOOM_WS_MAX_SUBSCRIPTIONS, and that the account is not the mock server (KRX only)"
                )
            self.mark_ready()
        elif trnm == "SYSTEM":
            log.warning("%s: Kiwoom system message: %s %s", self.name, message.get("code", ""), message.get("message", ""))
        else:
            log.debug("%s: ignored %s message", self.name, trnm)

    def _real(self, message: Mapping, text: str, received_at: datetime) -> None:
        data = message.get("data")
        if not isinstance(data, list):
            self.outbox.dead(text, "kiwoom: REAL message without a data list")
            return
        ticks = []
        for i, item in enumerate(data):
            if not isinstance(item, Mapping):
                self.outbox.dead(json.dumps(item, ensure_ascii=False), f"kiwoom: REAL element {i + 1} is not an object", frame=text)
                continue
            if item.get("type") != REAL_TYPE:
                continue  # other real-time types are not ours
            try:
                ticks.append(real_to_fields(item, received_at, self.source))
            except InvalidTick as exc:
                if isinstance(exc, VenueMismatch):
                    self.stats.venue_mismatches += 1
                self.outbox.dead(json.dumps(item, ensure_ascii=False), f"kiwoom: REAL element {i + 1}: {exc}", frame=text)
        self.outbox.ticks(ticks)


def _code(message: Mapping) -> int | str:
    code = message.get("return_code")
    try:
        return int(code)
    except (TypeError, ValueError):
        return str(code)
