"""Adjusted prices (수정주가): daily factors per symbol, and applying them to ticks and bars.

A factor is the broker's adjusted close over the close as traded on that date (KIS daily chart
``FID_ORG_ADJ_PRC`` 0 vs 1, Kiwoom ``upd_stkpc_tp`` 1 vs 0): 1 on and after the latest split or
rights issue, e.g. 1/50 before a 50:1 split. Prices of a date times its factor are prices
back-adjusted to the latest date; volumes are divided by it, so turnover stays as traded. A date
without a stored factor keeps factor 1 (nothing known to adjust).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa
import pyarrow.compute as pc

from .errors import QueryError
from .wire import UTC

ADJUSTMENT_SCHEMA = pa.schema([
    ("symbol", pa.string()), ("day", pa.date32()), ("factor", pa.decimal128(18, 12)), ("close", pa.decimal128(18, 4)),
    ("adjusted_close", pa.decimal128(18, 4)), ("source", pa.string()), ("refreshed_at", pa.timestamp("us", tz="UTC")),
])
FACTOR_QUANTUM = Decimal("1e-12")
PRICE_QUANTUM = Decimal("0.0001")
#: the candle columns that are prices (times the factor) and volumes (divided by it)
PRICE_COLUMNS = ("open", "high", "low", "close", "vwap", "price")
VOLUME_COLUMNS = ("volume", "cum_volume")
KST_OFFSET_US = 9 * 3600 * 1_000_000


def factor_rows(symbol: str, closes: Mapping[date, Decimal], adjusted: Mapping[date, Decimal], source: str, now: datetime) -> list[dict[str, object]]:
    """One row per date both series have: factor = adjusted close / close, 12 decimals."""
    rows: list[dict[str, object]] = []
    for day in sorted(closes.keys() & adjusted.keys()):
        if closes[day] <= 0:
            continue
        factor = (adjusted[day] / closes[day]).quantize(FACTOR_QUANTUM, ROUND_HALF_UP)
        rows.append({"symbol": symbol, "day": day, "factor": factor, "close": closes[day], "adjusted_close": adjusted[day],
                     "source": source, "refreshed_at": now.astimezone(UTC)})
    return rows


def apply(table: pa.Table, factors: pa.Table, day_of_row: pa.Array) -> pa.Table:
    """``table`` (ticks or bars) with its price columns times, and volume columns divided by, the
    factor of each row's (symbol, KST date) — exact decimals, prices rounded half-up to 4 places."""
    if table.num_rows == 0 or factors.num_rows == 0:
        return table
    lookup = {(s, d): f for s, d, f in zip(factors.column("symbol").to_pylist(), factors.column("day").to_pylist(),
                                           factors.column("factor").to_pylist())}
    row_factor = [lookup.get(key, Decimal(1)) for key in zip(table.column("symbol").to_pylist(), day_of_row.to_pylist())]
    if all(f == 1 for f in row_factor):
        return table
    columns = []
    for name, column in zip(table.column_names, table.columns):
        if name in PRICE_COLUMNS:
            values = [None if v is None else (v * f).quantize(PRICE_QUANTUM, ROUND_HALF_UP) for v, f in zip(column.to_pylist(), row_factor)]
            columns.append(pa.array(values, column.type))
        elif name in VOLUME_COLUMNS:
            values = [None if v is None else int((Decimal(v) / f).to_integral_value(ROUND_HALF_UP)) for v, f in zip(column.to_pylist(), row_factor)]
            columns.append(pa.array(values, column.type))
        else:
            columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)


def kst_days(instants: pa.ChunkedArray) -> pa.Array:
    """The KST calendar date of each instant."""
    shifted = pc.add(pc.cast(instants.cast(pa.timestamp("us", tz="UTC")), pa.int64()), KST_OFFSET_US)
    return pc.cast(pc.cast(shifted, pa.timestamp("us")), pa.date32())


def check_timeframe_period(period: str) -> None:
    """Adjusting bars after aggregation is exact only when every bar lies within one date."""
    if period not in ("intraday", "day"):
        raise QueryError("adjusted=True works for intraday and 1d bars; build 1w/1mo bars from adjusted 1d bars")
