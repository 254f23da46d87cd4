"""KIS real-time trades over KIS's WebSocket: H0STCNT0 (KRX) and H0NXCNT0 (NXT).

Protocol (KIS Open API, see docs/collectors.md): subscribe per (tr_id, symbol) with the
approval key; the server acks each with a JSON frame (OPSP0000 + the AES key/iv), then sends
data frames ``<encrypted 0|1>|<tr_id>|<count NNN>|<count x 46 '^'-separated fields>`` and a
JSON PINGPONG heartbeat we echo. Both trade TRs have the same 46 fields in the same order
and no field names the venue: the tr_id does, so each venue keeps its own cumulative
volume. The combined feed H0UNCNT0 (통합) is not used — it carries no venue per trade. One
session holds a limited number of registrations (41 by KIS's 2025 notice, 40 in the
official samples) and an NXT symbol costs a second one: ``plan.plan_subscriptions``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ...core.wire import UTC, InvalidTick, Venue
from .base import CollectorStats, FatalCollectorError, Outbox, Pair, SessionLost
from .mapping import business_date, kst_instant, make_tick, unsigned_decimal, unsigned_int
from .ws import WsOptions, WsSession

log = logging.getLogger(__name__)

#: The trade TR of each venue (H0UNCNT0, the combined 통합 feed, deliberately absent).
TR_IDS: dict[Venue, str] = {"KRX": "H0STCNT0", "NXT": "H0NXCNT0"}
VENUE_OF_TR: dict[str, Venue] = {tr: venue for venue, tr in TR_IDS.items()}
TR_ID = TR_IDS["KRX"]
FIELDS_PER_RECORD = 46
F_CODE, F_TIME, F_PRICE, F_VOLUME, F_CUM_VOLUME, F_SIDE, F_DATE = 0, 1, 2, 12, 13, 21, 33
SIDES = {"1": "B", "5": "S"}  # field 22: CCLD_DVSN (KRX) / CNTG_CLS_CODE (NXT): 1 buy, 5 sell, 3 pre-market (unknown side)

SUBSCRIBED, UNSUBSCRIBED, ALREADY_SUBSCRIBED, NOT_SUBSCRIBED = "OPSP0000", "OPSP0001", "OPSP0002", "OPSP0003"
KEY_IN_USE, MAX_SUBSCRIBE_OVER = "OPSP8996", "OPSP0008"


class FrameError(ValueError):
    """A data frame that cannot be read at all; the message is the dead-letter reason."""


@dataclass
class ParsedFrame:
    ticks: list[dict[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (record text, reason)


def subscribe_message(approval_key: str, symbol: str, subscribe: bool = True, tr_id: str = TR_ID) -> str:
    return json.dumps(
        {
            "header": {"approval_key": approval_key, "custtype": "P", "tr_type": "1" if subscribe else "2", "content-type": "utf-8"},
            "body": {"input": {"tr_id": tr_id, "tr_key": symbol}},
        }
    )


def aes_decrypt(key: str, iv: str, payload: str) -> str:
    """AES-256-CBC, PKCS7, base64 — KIS sends the key and iv as text in the subscribe ack."""
    try:
        decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
        padded = decryptor.update(base64.b64decode(payload, validate=True)) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except Exception as exc:  # noqa: BLE001 - any failure is one reason for the DLQ
        raise FrameError(f"cannot decrypt payload: {type(exc).__name__}: {exc}") from None


def aes_encrypt(key: str, iv: str, text: str) -> str:
    """The inverse of ``aes_decrypt`` (the stand-in server uses it)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def parse_frame(text: str, ciphers: Mapping[str, tuple[str, str]], received_at: datetime, source: str = "kis") -> ParsedFrame:
    """Every record of one H0STCNT0/H0NXCNT0 data frame -> wire fields with the tr_id's
    venue; bad records are rejected one by one. Raises FrameError when the frame as a whole
    is unreadable (truncated, another TR)."""
    parts = text.split("|", 3)
    if len(parts) != 4:
        raise FrameError(f"want 4 '|'-separated parts (flag|tr_id|count|payload), got {len(parts)}")
    flag, tr_id, count_text, payload = parts
    if flag not in ("0", "1"):
        raise FrameError(f"encryption flag must be 0 or 1, got {flag!r}")
    venue = VENUE_OF_TR.get(tr_id)
    if venue is None:
        raise FrameError(f"unexpected tr_id {tr_id!r} (this collector subscribes {' and '.join(TR_IDS.values())} only)")
    if not count_text.isdigit() or int(count_text) < 1:
        raise FrameError(f"record count must be a positive number, got {count_text!r}")
    count = int(count_text)
    if flag == "1":
        if tr_id not in ciphers:
            raise FrameError("encrypted frame before the subscribe ack gave its key/iv")
        key, iv = ciphers[tr_id]
        payload = aes_decrypt(key, iv, payload)
    values = payload.split("^")
    if len(values) % count or len(values) // count < FIELDS_PER_RECORD:
        raise FrameError(
            f"truncated: {count} record(s) need {count} x {FIELDS_PER_RECORD} fields, got {len(values)}"
        )
    stride = len(values) // count  # > 46 if KIS ever appends fields; ours stay at the front
    out = ParsedFrame()
    for i in range(count):
        record = values[i * stride : (i + 1) * stride]
        try:
            out.ticks.append(record_to_fields(record, received_at, source, venue))
        except InvalidTick as exc:
            out.rejected.append(("^".join(record), f"record {i + 1} of {count}: {exc}"))
    return out


def record_to_fields(record: Sequence[str], received_at: datetime, source: str = "kis", venue: Venue = "KRX") -> dict[str, str]:
    day = business_date(record[F_DATE])
    return make_tick(
        venue=venue,
        symbol=record[F_CODE],
        ts=kst_instant(day, record[F_TIME]),
        price=unsigned_decimal(record[F_PRICE], "price"),
        volume=unsigned_int(record[F_VOLUME], "volume"),
        cum_volume=unsigned_int(record[F_CUM_VOLUME], "cum_volume"),
        side=SIDES.get(record[F_SIDE]),
        source=source,
        received_at=received_at,
    )


class KisSession(WsSession):
    """One KIS WebSocket session (one app key) holding up to ``max_subscriptions`` pairs,
    each subscribed as (its venue's tr_id, symbol)."""

    source = "kis"

    def __init__(
        self,
        name: str,
        pairs: Sequence[Pair],
        approval_key: Callable[[], str],
        options: WsOptions,
        outbox: Outbox,
        stats: CollectorStats,
    ):
        super().__init__(name, pairs, options, outbox, stats)
        self._approval_key = approval_key
        self._key: str | None = None
        self.ciphers: dict[str, tuple[str, str]] = {}
        self.pending: set[tuple[str, str]] = set()  # (tr_id, symbol) awaiting the ack
        self.refused: dict[Pair, str] = {}
        self.unsubscribing: set[tuple[str, str]] = set()

    def _registrations(self) -> list[tuple[str, str]]:
        return [(TR_IDS[venue], symbol) for venue, symbol in self.pairs if (venue, symbol) not in self.refused]

    async def on_open(self, ws) -> None:
        self._key = await asyncio.to_thread(self._approval_key)
        registrations = self._registrations()
        self.pending = set(registrations)
        for tr_id, symbol in registrations:
            await ws.send(subscribe_message(self._key, symbol, tr_id=tr_id))
        if not self.pending:
            self.mark_ready()

    async def on_close(self, ws) -> None:
        """Unsubscribe and wait (briefly) for the acks; ticks arriving meanwhile still count."""
        if self._key is None:
            return
        self.unsubscribing = set(self._registrations())
        for tr_id, symbol in self.unsubscribing:
            await ws.send(subscribe_message(self._key, symbol, subscribe=False, tr_id=tr_id))
        deadline = asyncio.get_running_loop().time() + 1.5
        while self.unsubscribing:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            text = await asyncio.wait_for(ws.recv(), timeout=left)
            await self.on_message(ws, text if isinstance(text, str) else text.decode(), datetime.now(UTC))

    async def on_message(self, ws, text: str, received_at: datetime) -> None:
        if text.startswith("{"):
            await self._control(ws, text)
            return
        try:
            parsed = parse_frame(text, self.ciphers, received_at, self.source)
        except FrameError as exc:
            self.outbox.dead(text, f"kis: {exc}")
            return
        self.outbox.ticks(parsed.ticks)
        for record, reason in parsed.rejected:
            self.outbox.dead(record, f"kis: {reason}", frame=text)

    async def _control(self, ws, text: str) -> None:
        try:
            message = json.loads(text)
            header = message["header"]
            tr_id = header["tr_id"]
        except (ValueError, KeyError, TypeError) as exc:
            self.outbox.dead(text, f"kis: unreadable control frame: {type(exc).__name__}: {exc}")
            return
        if tr_id == "PINGPONG":
            await ws.send(text)
            return
        body = message.get("body") or {}
        code = str(body.get("msg_cd", ""))
        msg = str(body.get("msg1", ""))
        symbol = str(header.get("tr_key", ""))
        registration = (str(tr_id), symbol)
        venue = VENUE_OF_TR.get(str(tr_id), "KRX")
        if code in (SUBSCRIBED, ALREADY_SUBSCRIBED):
            output = body.get("output") or {}
            if output.get("key") and output.get("iv"):
                self.ciphers[tr_id] = (str(output["key"]), str(output["iv"]))
            self.pending.discard(registration)
            if not self.pending:
                self.mark_ready()
        elif code in (UNSUBSCRIBED, NOT_SUBSCRIBED):
            self.unsubscribing.discard(registration)
            log.info("%s: %s %s %s (%s)", self.name, tr_id, symbol, msg, code)
        elif code == MAX_SUBSCRIBE_OVER or "MAX SUBSCRIBE OVER" in msg.upper():
            raise FatalCollectorError(
                f"KIS refused subscription of {venue} {symbol}: {msg} ({code}); this session holds {len(self.pairs)} "
                "registrations — lower TICKVAULT_KIS_WS_MAX_SUBSCRIPTIONS or add app keys (TICKVAULT_KIS_WS_EXTRA_APPS)"
            )
        elif "APPROVAL" in msg.upper():
            invalidate = getattr(self._approval_key, "invalidate", None)
            if invalidate is not None:
                invalidate()
            raise SessionLost(f"KIS refused the approval key ({code} {msg}); fetching a new one")
        elif code == KEY_IN_USE:
            raise SessionLost(f"KIS says the app key is already in use by another session ({code}); stop the other collector")
        else:
            if (venue, symbol) not in self.refused:
                self.refused[(venue, symbol)] = f"{code} {msg}".strip()
                self.stats.uncovered += 1
            self.pending.discard(registration)
            log.error(
                "%s: KIS refused subscription of %s %s (%s): %s %s — check the symbol and the account; it stays "
                "unsubscribed until restart (counted in tickvault_collector_uncovered_pairs)",
                self.name, venue, symbol, tr_id, code, msg,
            )
            if not self.pending:
                self.mark_ready()
