"""`tickvault adjustments refresh`: daily adjustment factors (수정주가) from the broker into the lake.

For each symbol the broker's daily chart is asked twice — adjusted and as traded (KIS
``FID_ORG_ADJ_PRC`` 0/1, Kiwoom ``upd_stkpc_tp`` 1/0) — and each date's factor is their ratio
(``core.adjustments``). The run replaces the symbol's factors over the refreshed dates in one lake
commit, so a split announced later re-adjusts the whole history on the next refresh.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

import pyarrow as pa

from ..core.adjustments import ADJUSTMENT_SCHEMA, factor_rows
from ..core.config import Settings
from ..core.wire import UTC
from ..stores.lake import Lake
from .brokers.kis import KisClient
from .brokers.kiwoom import KiwoomClient

Broker = Literal["kis", "kiwoom"]
log = logging.getLogger(__name__)


#: calendar days a scheduled refresh looks back (about 100 trading days: one daily-chart page)
DAILY_LOOKBACK_DAYS = 140


def refresh_day(settings: Settings, day: date) -> pa.Table | None:
    """The scheduled refresh after the close: the factors of the day's symbols over the last
    ~100 trading days (a split or rights issue in that window re-adjusts those dates); None
    without broker credentials."""
    from .recovery.daily import has_credentials

    if not has_credentials(settings, settings.recovery_broker):
        log.warning("adjustment factors of %s not refreshed: no %s credentials", day, settings.recovery_broker)
        return None
    lake = Lake(settings)
    try:
        symbols = sorted({symbol for _, symbol in lake.symbols_of_day(day)})
    finally:
        lake.close()
    return refresh(settings, symbols, day - timedelta(days=DAILY_LOOKBACK_DAYS), day)


def refresh(settings: Settings, symbols: Sequence[str], first: date, last: date, broker: Broker | None = None) -> pa.Table:
    """Ask the broker for the symbols' daily closes (adjusted and as traded) from ``first`` to ``last``,
    store the factors in the lake and return them (``ADJUSTMENT_SCHEMA``)."""
    chosen = broker or settings.recovery_broker
    client: KisClient | KiwoomClient = KisClient(settings) if chosen == "kis" else KiwoomClient(settings)
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    try:
        for symbol in symbols:
            closes = client.daily_closes(symbol, first, last, adjusted=False)
            adjusted = client.daily_closes(symbol, first, last, adjusted=True)
            rows += factor_rows(symbol, closes, adjusted, chosen, now)
    finally:
        client.close()
    table = pa.Table.from_pylist(rows, schema=ADJUSTMENT_SCHEMA)
    lake = Lake(settings)
    try:
        lake.write_adjustments(table)
    finally:
        lake.close()
    return table
