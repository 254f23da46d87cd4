"""Broker values -> wire format v1, validated exactly as the archivers will validate them,
so a bad record is dead-lettered at the collector with its raw text, not later."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from ...core.wire import KST, InvalidTick, Tick, Venue, parse_fields, parse_venue_symbol


def kst_instant(day: date, hhmmss: str) -> datetime:
    """Business date + KST wall-clock HHMMSS -> an aware instant (one-second resolution)."""
    if len(hhmmss) != 6 or not hhmmss.isdigit():
        raise InvalidTick(f"time: want HHMMSS, got {hhmmss!r}")
    try:
        clock = time(int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:]))
    except ValueError:
        raise InvalidTick(f"time: not a valid HHMMSS: {hhmmss!r}") from None
    return datetime.combine(day, clock, tzinfo=KST)


def business_date(yyyymmdd: str) -> date:
    if len(yyyymmdd) != 8 or not yyyymmdd.isdigit():
        raise InvalidTick(f"business date: want YYYYMMDD, got {yyyymmdd!r}")
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise InvalidTick(f"business date: not a valid date: {yyyymmdd!r}") from None


def unsigned_decimal(text: str, name: str) -> Decimal:
    """Kiwoom signs prices by direction ('-78800'); the magnitude is the price."""
    try:
        return abs(Decimal(text.strip()))
    except (InvalidOperation, AttributeError):
        raise InvalidTick(f"{name}: not a number: {text!r}") from None


def unsigned_int(text: str, name: str) -> int:
    stripped = text.strip().lstrip("+-")
    if not stripped.isdigit():
        raise InvalidTick(f"{name}: not an integer: {text!r}")
    return int(stripped)


def make_tick(
    *,
    venue: Venue | None = None,
    symbol: str,
    ts: datetime,
    price: Decimal,
    volume: int,
    cum_volume: int,
    side: str | None,
    source: str,
    received_at: datetime,
) -> dict[str, str]:
    """Wire fields for one trade; raises InvalidTick (the dead-letter reason) when invalid.
    ``venue`` None: the symbol's own spelling decides (``_NX`` = NXT, plain = KRX)."""
    venue, code = parse_venue_symbol(venue or "", symbol)
    fields = Tick(code, ts, price, volume, cum_volume, side, source, received_at, venue).to_fields()
    parse_fields(fields, received_at)
    return fields
