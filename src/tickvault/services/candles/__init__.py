"""Bars (candles) from ticks, computed by the same SQL on DuckDB (lake) and PostgreSQL (hot).

The SQL cannot know KRX's calendar, so Python hands it a small grid with one row per trading
date in the query range: the date number, the bucket base (session open, moved back by whole
bucket widths to at or before 00:00 KST), the 1d/1w/1mo label and the regular-session window.
Ticks on dates missing from the grid (weekends, holidays) never become bars. Both engines then
do only integer arithmetic on microseconds and exact decimal sums, so their rows are identical.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

import pyarrow as pa

from ...core import calendar as krx
from ...core.wire import KST, PRICE_TYPE, TS_TYPE, UTC
from ...core.timeframe import Timeframe, parse_timeframe

Session = Literal["regular", "all"]
SESSIONS: tuple[str, ...] = ("regular", "all")

TURNOVER_TYPE = pa.decimal128(38, 4)
#: Columns of every candle table tickvault returns (same names as the hot store's candles_*).
CANDLE_SCHEMA = pa.schema(
    [
        pa.field("bucket", TS_TYPE, nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("open", PRICE_TYPE),
        pa.field("high", PRICE_TYPE),
        pa.field("low", PRICE_TYPE),
        pa.field("close", PRICE_TYPE),
        pa.field("volume", pa.int64(), nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        pa.field("turnover", TURNOVER_TYPE, nullable=False),
        pa.field("vwap", PRICE_TYPE),
    ]
)
CANDLE_COLUMNS = tuple(CANDLE_SCHEMA.names)

US = 1_000_000
DAY_US = 86_400 * US
KST_OFFSET_US = 9 * 3600 * US
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def load_sql(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def to_us(ts: datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch (exact)."""
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def day_no(day: date) -> int:
    """Days since 1970-01-01 of a KST date (KST has had no DST since 1988: fixed +09:00)."""
    return (day - date(1970, 1, 1)).days


def kst_midnight_us(day: date) -> int:
    return day_no(day) * DAY_US - KST_OFFSET_US


def check_session(session: str) -> Session:
    if session not in SESSIONS:
        raise ValueError(f"unknown session {session!r}: use 'regular' (09:00-15:30 incl. closing auction) or 'all'")
    return session  # type: ignore[return-value]


def range_days(start: datetime, end: datetime) -> list[date]:
    """Trading dates touched by [start, end)."""
    if end <= start:
        return []
    first = start.astimezone(KST).date()
    last = (end - timedelta(microseconds=1)).astimezone(KST).date()
    return krx.trading_days(first, last)


def bucket_base_us(anchor_us: int, midnight_us: int, width_us: int) -> int:
    """The anchor moved back by whole widths to at or before midnight (keeps divisions nonnegative)."""
    steps = -(-(anchor_us - midnight_us) // width_us)  # ceil
    return anchor_us - steps * width_us


def day_grid(start: datetime, end: datetime, tf: Timeframe) -> dict[str, list[int]]:
    """Per trading date in [start, end): the numbers the bar SQL needs (see module doc)."""
    grid: dict[str, list[int]] = {k: [] for k in ("day_no", "base_us", "label_us", "reg_start_us", "reg_end_us")}
    for day in range_days(start, end):
        sess = krx.session(day)
        midnight = kst_midnight_us(day)
        anchor = to_us(sess.open)
        grid["day_no"].append(day_no(day))
        grid["base_us"].append(bucket_base_us(anchor, midnight, tf.seconds * US) if tf.intraday else midnight)
        grid["label_us"].append(kst_midnight_us(tf.period_start(day)))
        grid["reg_start_us"].append(anchor)
        grid["reg_end_us"].append(to_us(sess.regular_end))
    return grid


def _symbol_list(symbols: Sequence[str] | None) -> list[str] | None:
    if symbols is None:
        return None
    out = sorted(set(symbols))
    if not out:
        raise ValueError("empty symbol list: name at least one symbol, or pass None for all")
    return out


def _finish(columns: dict[str, list[Any]] | pa.Table) -> pa.Table:
    """Rows from either engine -> CANDLE_SCHEMA (bucket as UTC instant, exact decimals)."""
    if isinstance(columns, pa.Table):
        table = columns
        bucket = table.column("bucket_us").cast(pa.int64()).cast(TS_TYPE)
        arrays = [bucket] + [table.column(n).cast(CANDLE_SCHEMA.field(n).type) for n in CANDLE_COLUMNS[1:]]
    else:
        bucket = pa.array(columns["bucket_us"], pa.int64()).cast(TS_TYPE)
        arrays = [bucket] + [pa.array(columns[n], CANDLE_SCHEMA.field(n).type) for n in CANDLE_COLUMNS[1:]]
    return pa.Table.from_arrays(arrays, schema=CANDLE_SCHEMA)


def empty_candles() -> pa.Table:
    return CANDLE_SCHEMA.empty_table()


def candles_duckdb(
    con: Any,
    ticks_expr: str,
    tf: Timeframe | str,
    start: datetime,
    end: datetime,
    symbols: Sequence[str] | None = None,
    session: Session = "regular",
    params: dict[str, Any] | None = None,
    partitioned: bool = False,
) -> pa.Table:
    """Bars from a DuckDB relation of ticks. ``ticks_expr`` is trusted SQL (a table name,
    optionally with ``AT (VERSION => $as_of)``, whose values come in ``params``), never user
    text. ``partitioned``: the relation has the lake's ``trade_date`` column to prune on."""
    tf = parse_timeframe(tf)
    session = check_session(session)
    grid = day_grid(start, end, tf)
    if not grid["day_no"]:
        return empty_candles()
    wanted = _symbol_list(symbols)
    days_name = f"tv_days_{uuid.uuid4().hex[:12]}"
    params = dict(params or {})
    params.update({"width_us": tf.seconds * US, "start": start, "end": end, "all_sessions": session == "all"})
    prune = "TRUE"
    if partitioned:
        prune = "k.trade_date BETWEEN $first_day AND $last_day"
        params["first_day"] = start.astimezone(KST).date()
        params["last_day"] = (end - timedelta(microseconds=1)).astimezone(KST).date()
    if wanted is None:
        symbol_filter = "TRUE"
    else:
        symbol_filter = "k.symbol IN (" + ", ".join(f"$s{i}" for i in range(len(wanted))) + ")"
        params.update({f"s{i}": s for i, s in enumerate(wanted)})
    sql = load_sql("candles_duckdb.sql").format(ticks=ticks_expr, days=days_name, symbols=symbol_filter, prune=prune)
    con.register(days_name, pa.table({k: pa.array(v, pa.int64()) for k, v in grid.items()}))
    try:
        result = con.execute(sql, params).to_arrow_table()
    finally:
        con.unregister(days_name)
    return _finish(result)


def candles_postgres(
    conn: Any,
    schema: str,
    tf: Timeframe | str,
    start: datetime,
    end: datetime,
    symbols: Sequence[str] | None = None,
    session: Session = "regular",
    table: str = "ticks",
) -> pa.Table:
    """Bars from ``<schema>.ticks`` on PostgreSQL (psycopg connection)."""
    from psycopg import sql as pgsql

    tf = parse_timeframe(tf)
    session = check_session(session)
    grid = day_grid(start, end, tf)
    if not grid["day_no"]:
        return empty_candles()
    wanted = _symbol_list(symbols)
    params: dict[str, Any] = dict(grid)
    params.update({"width_us": tf.seconds * US, "start": start, "end": end, "all_sessions": session == "all"})
    if wanted is None:
        symbol_filter = pgsql.SQL("TRUE")
    else:
        symbol_filter = pgsql.SQL("k.symbol = ANY(%(symbols)s::text[])")
        params["symbols"] = wanted
    query = pgsql.SQL(load_sql("candles_postgres.sql")).format(
        ticks=pgsql.Identifier(schema, table), symbols=symbol_filter
    )
    with conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
    columns = {name: [r[i] for r in rows] for i, name in enumerate(("bucket_us",) + CANDLE_COLUMNS[1:])}
    return _finish(columns)


# --- fill -------------------------------------------------------------------------------


def session_buckets_us(day: date, tf: Timeframe) -> list[int]:
    """Bucket starts covering a trading date's regular session, open through the closing auction."""
    if not tf.intraday:
        return [kst_midnight_us(tf.period_start(day))]
    sess = krx.session(day)
    anchor, close, width = to_us(sess.open), to_us(sess.close), tf.seconds * US
    return list(range(anchor, close + 1, width))


def fill_forward(
    table: pa.Table,
    tf: Timeframe | str,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> pa.Table:
    """Add the missing bars of each symbol as flat bars at the previous close with zero volume.

    The grid is every bucket of the regular session of each trading date in [start, end),
    plus every bucket any symbol has a bar in, and nothing that starts after ``now`` (no bars
    for the future). A symbol is filled only after its first real bar in the range: there is
    no close to carry before it. Filled bars have trade_count 0, turnover 0 and vwap null.
    """
    tf = parse_timeframe(tf)
    if table.num_rows == 0:
        return table
    lo, hi = to_us(start), to_us(end)
    horizon = to_us(now or datetime.now(UTC))
    width = tf.seconds * US
    rows = table.to_pydict()
    bucket_us = [to_us(b) for b in rows["bucket"]]
    grid: set[int] = set(bucket_us)
    for day in range_days(start, end):
        for b in session_buckets_us(day, tf):
            if b > horizon or (tf.intraday and not (b < hi and b + width > lo)):
                continue
            grid.add(b)
    ordered = sorted(grid)
    out: dict[str, list[Any]] = {n: [] for n in ("bucket_us",) + CANDLE_COLUMNS[1:]}
    for symbol, group in itertools.groupby(range(table.num_rows), key=lambda i: rows["symbol"][i]):
        present = {bucket_us[i]: i for i in group}
        first = min(present)
        last_close: Decimal | None = None
        for b in ordered:
            if b < first:
                continue
            i = present.get(b)
            out["bucket_us"].append(b)
            if i is not None:
                for name in CANDLE_COLUMNS[1:]:
                    out[name].append(rows[name][i])
                last_close = rows["close"][i]
                continue
            for name in ("open", "high", "low", "close"):
                out[name].append(last_close)
            out["symbol"].append(symbol)
            out["volume"].append(0)
            out["trade_count"].append(0)
            out["turnover"].append(Decimal(0))
            out["vwap"].append(None)
    return _finish(out)
