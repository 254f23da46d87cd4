"""Broker trades -> ticks (source "recovery") that fill exactly the archive's holes.

A tick's identity needs the cumulative day volume. KIS lists it with every trade
(``acml_vol``), so a KIS trade is used only where its cumulative volume falls in a range
the archive is missing. Kiwoom's tick chart lists time, price and quantity only; the
cumulative volume is rebuilt from an anchor the archive proves: at the start of the
earliest repair window, the last stored tick before it and the first stored tick at or
after it are continuous, so the cumulative volume there is known exactly. Every later
broker row adds its quantity, and the result must reproduce every stored tick after the
anchor (same cumulative volume, second, quantity and price) — otherwise the broker's list
and the archive disagree and nothing is inserted. Nothing is ever guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime

from ...core.wire import KST, UTC, InvalidTick, Tick, Venue, parse_fields
from ..brokers.common import BrokerTrade
from .archive import StoredTick, SymbolArchive, analyse

SOURCE = "recovery"


@dataclass
class Conversion:
    ticks: list[Tick] = field(default_factory=list)
    mismatches: int = 0  # broker rows that contradict stored ticks
    reason: str | None = None  # why some or all of the broker's rows could not be used


def _tick(symbol: str, trade: BrokerTrade, cum_volume: int, received_at: datetime) -> Tick:
    """Validated like any tick arriving on the stream (same rules, same messages), on the
    venue the broker listed the trade for."""
    tick = Tick(symbol, trade.ts.astimezone(UTC), trade.price, trade.volume, cum_volume, None, SOURCE, received_at, trade.venue)
    return parse_fields(tick.to_fields(), received_at)


def _agrees(stored: StoredTick, trade: BrokerTrade) -> bool:
    return stored.ts == trade.ts and stored.volume == trade.volume and stored.price == trade.price


def _in_missing(archive: SymbolArchive, cum: int, ts: datetime) -> bool:
    last = archive.ticks[-1] if archive.ticks else None
    if last is None or cum > last.cum_volume:
        return last is None or ts >= last.ts
    for rng in archive.missing:
        if rng.lo < cum <= rng.hi:
            return (rng.lo_ts is None or rng.lo_ts <= ts) and ts <= rng.hi_ts
    return False


def _check_no_new_conflicts(archive: SymbolArchive, conversion: Conversion) -> Conversion:
    if not conversion.ticks:
        return conversion
    added = [StoredTick(t.ts, t.price, t.volume, t.cum_volume) for t in conversion.ticks]
    combined = analyse(archive.symbol, archive.ticks + added)
    if combined.conflicts > archive.conflicts:
        return Conversion([], conversion.mismatches, "broker trades overlap stored ticks; nothing inserted")
    return conversion


def _other_venue(trades: list[BrokerTrade], venue: Venue) -> str | None:
    """A list holding another venue's trades cannot fill this venue's holes (each venue counts its own volume)."""
    others = sorted({t.venue for t in trades if t.venue != venue})
    if others:
        return f"the broker listed {', '.join(others)} trades for a {venue} recovery; nothing inserted"
    return None


def from_exact(archive: SymbolArchive, trades: list[BrokerTrade], received_at: datetime, venue: Venue = "KRX") -> Conversion:
    """KIS: trades carry their cumulative volume (of ``venue``, the archive's venue)."""
    wrong = _other_venue(trades, venue)
    if wrong:
        return Conversion(mismatches=len(trades), reason=wrong)
    stored = {t.cum_volume: t for t in archive.ticks}
    out = Conversion()
    seen: set[int] = set()
    for trade in sorted(trades, key=lambda t: t.cum_volume or 0):
        cum = trade.cum_volume
        if cum is None or cum in seen:
            continue
        seen.add(cum)
        known = stored.get(cum)
        if known is not None:
            if not _agrees(known, trade):
                out.mismatches += 1
            continue
        if not _in_missing(archive, cum, trade.ts):
            out.mismatches += 1
            continue
        try:
            out.ticks.append(_tick(archive.symbol, trade, cum, received_at))
        except InvalidTick as exc:
            out.mismatches += 1
            out.reason = f"broker trade refused by validation: {exc}"
    if out.mismatches and out.reason is None:
        out.reason = f"{out.mismatches} broker trade(s) contradict stored ticks (left out)"
    return _check_no_new_conflicts(archive, out)


def from_anchored(archive: SymbolArchive, trades: list[BrokerTrade], since: datetime, received_at: datetime,
                  venue: Venue = "KRX") -> Conversion:
    """Kiwoom: rebuild ``venue``'s cumulative volume from the stored one at ``since``.

    ``trades`` must hold every broker trade of ``venue`` from ``since`` to the end of the day, oldest first.
    """
    wrong = _other_venue(trades, venue)
    if wrong:
        return Conversion(mismatches=len(trades), reason=wrong)
    rows = [t for t in trades if t.ts >= since]
    before = archive.last_before(since)
    anchor = before.cum_volume if before else 0
    after = archive.first_from(since)
    day_start = since.astimezone(KST).time() == dtime(0, 0)
    # the day starts at cumulative volume 0; anywhere else the boundary must be continuous
    if not (before is None and day_start) and after is not None and after.cum_volume - after.volume != anchor:
        return Conversion(reason=f"no exact anchor: the archive is not continuous at {since.isoformat()}")
    stored = {t.cum_volume: t for t in archive.ticks if t.ts >= since}
    rebuilt: list[tuple[BrokerTrade, int]] = []
    cum = anchor
    for trade in rows:
        cum += trade.volume
        rebuilt.append((trade, cum))
    mismatches = 0
    matched: set[int] = set()
    for trade, c in rebuilt:
        known = stored.get(c)
        if known is not None:
            matched.add(c)
            if not _agrees(known, trade):
                mismatches += 1
    unmatched = len(stored) - len(matched)
    if mismatches or unmatched:
        return Conversion(
            mismatches=mismatches + unmatched,
            reason=(f"Kiwoom's tick list does not line up with the archive after {since.astimezone().isoformat()} "
                    f"({mismatches} differing, {unmatched} stored tick(s) not reproduced); nothing inserted"),
        )
    out = Conversion()
    for trade, c in rebuilt:
        if c in stored:
            continue
        try:
            out.ticks.append(_tick(archive.symbol, trade, c, received_at))
        except InvalidTick as exc:
            return Conversion(mismatches=1, reason=f"broker trade refused by validation: {exc}; nothing inserted")
    return _check_no_new_conflicts(archive, out)
