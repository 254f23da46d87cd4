"""The day's universe: which (venue, symbol) pairs should trade on a KST date.

Every configured symbol is KRX-listed; which of them trade on NXT changes quarterly and at
short notice, so the NXT part is asked from the broker each trading morning (KIS
search-stock-info CTPF1002R ``cptt_trad_tr_psbl_yn`` / ``nxt_tr_stop_yn``, Kiwoom ka10099 /
ka10100 ``nxtEnable``) and kept per date in both stores (``write_universe``): the collectors
subscribe by it, verify and recovery prove completeness against it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import date

from ...core.config import Settings
from ...core.errors import StoreError
from ...stores.hot import HotStore
from ...stores.lake import Lake
from ..brokers.errors import BrokerAuthError, BrokerError, BrokerRateLimited
from .base import Pair

log = logging.getLogger(__name__)

#: symbols -> {symbol: trades on NXT today}; a symbol the broker does not know is left out.
NxtLookup = Callable[[Sequence[str]], dict[str, bool]]


def kis_lookup(settings: Settings) -> NxtLookup:
    """NXT status per symbol from KIS (one CTPF1002R call each, rate-limited by the client)."""
    from ..brokers.kis import KisClient

    def lookup(symbols: Sequence[str]) -> dict[str, bool]:
        client = KisClient(settings)
        found: dict[str, bool] = {}
        try:
            for symbol in symbols:
                try:
                    found[symbol] = client.nxt_status(symbol)
                except (BrokerAuthError, BrokerRateLimited):
                    raise
                except BrokerError as exc:
                    log.warning("kis: search-stock-info knows no %s (%s); its NXT status stays unknown", symbol, exc)
            return found
        finally:
            client.close()

    return lookup


def kiwoom_lookup(settings: Settings) -> NxtLookup:
    """NXT status per symbol from Kiwoom (ka10099 market lists, ka10100 for the rest)."""
    from ..brokers.kiwoom import KiwoomClient

    def lookup(symbols: Sequence[str]) -> dict[str, bool]:
        client = KiwoomClient(settings)
        try:
            return client.nxt_enabled(symbols)
        finally:
            client.close()

    return lookup


def broker_lookup(settings: Settings, broker: str) -> NxtLookup:
    if broker == "kis":
        return kis_lookup(settings)
    if broker == "kiwoom":
        return kiwoom_lookup(settings)
    raise ValueError(f"unknown broker {broker!r}: use kis or kiwoom")


def stored_universe(settings: Settings, day: date) -> list[Pair]:
    """The day's universe as stored: the hot store's, else the lake's; empty when neither has it."""
    for opener in (HotStore, Lake):
        try:
            store = opener(settings)
        except StoreError as exc:
            log.warning("universe of %s not read from %s: %s", day, opener.__name__, exc)
            continue
        try:
            pairs = store.read_universe(day)
        except StoreError as exc:
            log.warning("universe of %s not read from %s: %s", day, opener.__name__, exc)
            pairs = []
        finally:
            store.close()
        if pairs:
            return [(venue, symbol) for venue, symbol in pairs]  # type: ignore[misc]  # stores hold VENUES only
    return []


def refresh_universe(settings: Settings, day: date, symbols: Sequence[str], lookup: NxtLookup, source: str) -> list[Pair]:
    """Ask the broker which of ``symbols`` trade on NXT, merge the answer into the day's stored
    universe (pairs of other symbols are kept) and write it to both stores. Returns the merged
    universe. Symbols the broker does not know keep what was stored for them."""
    unique = list(dict.fromkeys(symbols))
    status = lookup(unique)
    unknown = [s for s in unique if s not in status]
    if unknown:
        log.error("universe %s: the broker does not know %d symbol(s): %s — check them", day, len(unknown), ", ".join(unknown[:20]))
    answered = set(status)
    merged = [p for p in stored_universe(settings, day) if p[1] not in answered]
    merged += [("KRX", s) for s in unique if s in answered]
    merged += [("NXT", s) for s in unique if status.get(s)]
    for opener in (HotStore, Lake):
        try:
            store = opener(settings)
            try:
                if isinstance(store, Lake):
                    store.require()  # a collector host without the lake must not create one
                store.write_universe(day, merged, source)
            finally:
                store.close()
        except StoreError as exc:
            log.error("universe of %s not written to %s: %s — verify and recovery will not know it; run `tickvault init`?",
                      day, opener.__name__, exc)
    nxt = sum(1 for v, _ in merged if v == "NXT")
    log.info("universe %s refreshed from %s: %d symbol(s) asked, %d trade on NXT (%d NXT pairs stored in all)",
             day, source, len(unique), sum(1 for s in unique if status.get(s)), nxt)
    return merged


def day_universe(settings: Settings, day: date, symbols: Sequence[str], lookup: NxtLookup, source: str,
                 refresh: bool = False) -> Collection[Pair] | None:
    """The universe the collectors subscribe by: the stored one when it already covers every
    configured symbol (and ``refresh`` is not asked), else refreshed from the broker. None
    when neither is available — the NXT pairs then show up as uncovered in the plan."""
    stored = stored_universe(settings, day)
    known = {s for _v, s in stored}
    if stored and not refresh and all(s in known for s in symbols):
        log.info("universe %s: using the stored one (%d pairs)", day, len(stored))
        return stored
    try:
        return refresh_universe(settings, day, symbols, lookup, source)
    except BrokerError as exc:
        log.error("universe %s not refreshed from %s: %s", day, source, exc)
        return stored or None
