"""Shapes shared by both brokers' clients: minute bars and trades as the broker reports them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import httpx
from pydantic import SecretStr

from ...core.wire import KST, Venue
from .errors import BrokerError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MinuteBar:
    """One broker minute bar; ``minute`` is the KST start of the minute it covers."""

    minute: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(frozen=True, slots=True)
class BrokerTrade:
    """One trade as a broker lists it, tagged with the venue that executed it.
    ``cum_volume`` (that venue's day volume) is None when the broker omits it (Kiwoom)."""

    ts: datetime  # KST, one-second resolution
    price: Decimal
    volume: int
    cum_volume: int | None = None
    venue: Venue = "KRX"


def kst_at(day: date, hhmmss: str) -> datetime:
    """A KST instant from a trading date and an HHMMSS string."""
    text = hhmmss.strip().rjust(6, "0")
    if len(text) != 6 or not text.isdigit():
        raise ValueError(f"not an HHMMSS time: {hhmmss!r}")
    return datetime(day.year, day.month, day.day, int(text[:2]), int(text[2:4]), int(text[4:]), tzinfo=KST)


def parse_compact(text: str) -> datetime:
    """YYYYMMDDHHMMSS (KST) -> aware datetime."""
    value = text.strip()
    if len(value) != 14 or not value.isdigit():
        raise ValueError(f"not a YYYYMMDDHHMMSS time: {text!r}")
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=KST)


def abs_price(text: object) -> Decimal:
    """Broker prices arrive as strings, Kiwoom's with a sign for the direction ("-78800")."""
    try:
        value = abs(Decimal(str(text).strip().replace(",", "")))
    except InvalidOperation:
        raise ValueError(f"not a price: {text!r}") from None
    return value


def to_int(text: object) -> int:
    value = str(text).strip().replace(",", "")
    if value.startswith("+"):
        value = value[1:]
    return int(value or "0")


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


class Scrubber:
    """Replaces every known secret in a text: the last line of defence for messages and logs."""

    def __init__(self, secrets: Callable[[], Iterable[str | SecretStr | None]]):
        self._secrets = secrets

    def __call__(self, text: str) -> str:
        for secret in self._secrets():
            raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
            if raw and len(raw) >= 4:
                text = text.replace(raw, "***")
        return text


def backoff(attempt: int, base: float = 0.5, ceiling: float = 8.0) -> float:
    return min(ceiling, base * (2**attempt))


def request_with_retries(
    broker: str,
    send: Callable[[], httpx.Response],
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """Send, retrying transport failures (connection refused, timeouts) with backoff."""
    for attempt in range(retries + 1):
        try:
            return send()
        except httpx.TransportError as exc:
            if attempt >= retries:
                raise BrokerError(broker, f"unreachable after {retries + 1} attempts ({type(exc).__name__}); check the base URL and the network") from None
            delay = backoff(attempt)
            log.warning("%s: %s; retrying in %.1fs", broker, type(exc).__name__, delay)
            sleep(delay)
    raise AssertionError("unreachable")

