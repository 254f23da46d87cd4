"""The two brokers behind one small interface: minute bars for any day, trades for windows,
each for one venue (KIS: ``FID_COND_MRKT_DIV_CODE`` J / NX; Kiwoom: item ``CODE`` / ``CODE_NX``);
every trade returned carries the venue it was asked for.

Both brokers list individual trades only for the current day (KIS's time-conclusion TR
and Kiwoom's tick chart have no date parameter), so a past day can be checked against
minute bars but its missing trades cannot be fetched: ``TradesUnavailable`` says why.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from ...core.config import Settings
from ...core.wire import Venue
from ..brokers.common import BrokerTrade, MinuteBar
from ..brokers.kis import KisClient
from ..brokers.kiwoom import KiwoomClient


class TradesUnavailable(Exception):
    """The broker cannot list this day's trades (the message is the report's reason)."""


class BrokerSource(Protocol):
    """One broker's view of one venue (KRX or NXT): each venue has its own bars, trades and day volume."""

    name: str
    venue: Venue
    exact_cum_volume: bool  # do its trades carry the cumulative volume?

    def day_volume(self, symbol: str, day: date, today: date) -> int | None: ...

    def minute_bars(self, symbol: str, day: date, today: date, until: str) -> list[MinuteBar]: ...

    def trades(self, symbol: str, day: date, today: date, windows: list[tuple[datetime, datetime]]) -> list[BrokerTrade]: ...

    def calls(self) -> dict[str, int]: ...

    def close(self) -> None: ...


class KisSource:
    """KIS: FID_COND_MRKT_DIV_CODE J for KRX, NX for NXT."""

    name = "kis"
    exact_cum_volume = True

    def __init__(self, client: KisClient, venue: Venue = "KRX"):
        self.client = client
        self.venue = venue

    def day_volume(self, symbol: str, day: date, today: date) -> int | None:
        return self.client.day_volume(symbol, day, today, venue=self.venue)

    def minute_bars(self, symbol: str, day: date, today: date, until: str) -> list[MinuteBar]:
        if day == today:
            return self.client.minute_bars_today(symbol, day, until=until, venue=self.venue)
        return self.client.minute_bars_day(symbol, day, until=until, venue=self.venue)

    def trades(self, symbol: str, day: date, today: date, windows: list[tuple[datetime, datetime]]) -> list[BrokerTrade]:
        if day != today:
            raise TradesUnavailable("KIS lists trades (inquire-time-itemconclusion) only for the current day; run recovery on the day itself")
        out: list[BrokerTrade] = []
        for start, end in windows:
            out.extend(self.client.trades_today(symbol, day, start, end, venue=self.venue))
        return out

    def calls(self) -> dict[str, int]:
        return {"total": self.client.stats.calls, **self.client.stats.by_tr}

    def close(self) -> None:
        self.client.close()


class KiwoomSource:
    """Kiwoom: the plain code for KRX, CODE_NX for NXT."""

    name = "kiwoom"
    exact_cum_volume = False

    def __init__(self, client: KiwoomClient, venue: Venue = "KRX"):
        self.client = client
        self.venue = venue

    def day_volume(self, symbol: str, day: date, today: date) -> int | None:
        return None  # the minute chart (one page holds a whole day) is the cheapest check

    def minute_bars(self, symbol: str, day: date, today: date, until: str) -> list[MinuteBar]:
        return self.client.minute_bars(symbol, day, venue=self.venue)

    def trades(self, symbol: str, day: date, today: date, windows: list[tuple[datetime, datetime]]) -> list[BrokerTrade]:
        if day != today:
            raise TradesUnavailable("Kiwoom's tick chart (ka10079) has no date parameter and lists only the current day; run recovery on the day itself")
        since = min(start for start, _ in windows)
        return self.client.trades_back_to(symbol, day, since, venue=self.venue)

    def calls(self) -> dict[str, int]:
        return {"total": self.client.stats.calls, **self.client.stats.by_tr}

    def close(self) -> None:
        self.client.close()


def open_source(settings: Settings, broker: str, venue: Venue = "KRX") -> BrokerSource:
    if broker == "kis":
        return KisSource(KisClient(settings), venue)
    if broker == "kiwoom":
        return KiwoomSource(KiwoomClient(settings), venue)
    raise ValueError(f"unknown broker {broker!r}: use kis or kiwoom")
