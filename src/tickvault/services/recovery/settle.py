"""The broker's side of settling conflicting duplicates (``reconcile --repair --broker``).

A conflict is a natural key (venue, symbol, ts, cum_volume) the two stores hold with different
values. A broker whose trades carry the cumulative volume (KIS) names the trade exactly; its
price and volume then win. Brokers without it (Kiwoom) cannot tell trades of one second apart,
and no broker lists a past day's trades: those conflicts fall back to the earliest-received rule,
with the reason logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from ...core.calendar import KST
from ..brokers.errors import BrokerError
from ..sync.reconcile import BrokerValues, Conflict
from .planner import today_kst
from .sources import BrokerSource, TradesUnavailable

log = logging.getLogger(__name__)

Key = tuple[str, str, datetime, int]


def broker_values(source: BrokerSource, day: date, today: date | None = None) -> BrokerValues:
    """A lookup of the broker's (price, volume) for the conflicting keys of ``day``."""

    def lookup(conflicts: Sequence[Conflict]) -> dict[Key, tuple[Decimal, int]]:
        if not source.exact_cum_volume:
            log.warning("reconcile: %s trades carry no cumulative volume, so they cannot name a conflicting trade; "
                        "the earliest-received copy wins", source.name)
            return {}
        by_symbol: dict[str, list[Conflict]] = {}
        for c in conflicts:
            if c.venue == "KRX":  # the brokers' trade lists are KRX's
                by_symbol.setdefault(c.symbol, []).append(c)
        found: dict[Key, tuple[Decimal, int]] = {}
        for symbol, items in sorted(by_symbol.items()):
            windows = [_second(c.ts) for c in items]
            try:
                trades = source.trades(symbol, day, today or today_kst(), windows)
            except (TradesUnavailable, BrokerError) as exc:
                log.warning("reconcile: %s cannot settle the conflicts of %s (%s); the earliest-received copy wins",
                            source.name, symbol, exc)
                continue
            listed = {(t.cum_volume, t.ts.astimezone(KST).replace(microsecond=0)): (t.price, t.volume) for t in trades}
            for c in items:
                value = listed.get((c.cum_volume, _second(c.ts)[0]))
                if value is not None:
                    found[c.key] = value
        return found

    return lookup


def _second(ts: datetime) -> tuple[datetime, datetime]:
    """The KST second holding ``ts`` (brokers list trades at one-second resolution)."""
    start = ts.astimezone(KST).replace(microsecond=0)
    return start, start + timedelta(seconds=1)
