"""Bars (candles): their schema and the pure half of computing them.

Each store runs its own candle SQL (``stores/hot/sql/candles.sql``, ``stores/lake/sql/candles.sql``,
kept line-for-line parallel). The SQL cannot know KRX's calendar, so Python hands it a small grid
with one row per trading date in the query range (``day_grid``): the date number, the bucket base
(session open, moved back by whole bucket widths to at or before 00:00 KST), the 1d/1w/1mo label
and the regular-session window. Ticks on dates missing from the grid (weekends, holidays) never
become bars. Both engines then do only integer arithmetic on microseconds and exact decimal sums,
so their rows are identical; ``finish`` turns either engine's rows into ``CANDLE_SCHEMA``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

import pyarrow as pa

from . import calendar as krx
from .errors import QueryError
from .timeframe import Timeframe, parse_timeframe
from .wire import PRICE_TYPE, TS_TYPE, UTC, VENUES

#: regular: KRX's 09:00 open through its closing auction; extended: every trade of the trading
#: date on the selected venues (pre-market 07:00/08:00 through NXT's after-market to 20:00).
Session = Literal["regular", "extended"]
SESSIONS: tuple[str, ...] = ("regular", "extended")
SESSION_ALIASES = {"all": "extended"}
#: One venue's trades, or ALL: both venues' trades merged into one bar per bucket.
VenueChoice = Literal["KRX", "NXT", "ALL"]
VENUE_CHOICES: tuple[str, ...] = (*VENUES, "ALL")

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
        pa.field("venue", pa.string(), nullable=False),  # KRX, NXT or ALL: whose trades the bar holds
    ]
)
CANDLE_COLUMNS = tuple(CANDLE_SCHEMA.names)

US = 1_000_000
DAY_US = 86_400 * US
KST_OFFSET_US = 9 * 3600 * US
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    session = SESSION_ALIASES.get(session, session)
    if session not in SESSIONS:
        raise QueryError(
            f"unknown session {session!r}: use 'regular' (KRX 09:00 open through the closing auction) or 'extended' (every session)"
        )
    return session  # type: ignore[return-value]


def check_venue(venue: str) -> VenueChoice:
    """KRX, NXT or ALL (any case)."""
    upper = venue.upper() if isinstance(venue, str) else venue
    if upper not in VENUE_CHOICES:
        raise QueryError(f"unknown venue {venue!r}: use {', '.join(VENUE_CHOICES)} (ALL merges both venues' trades)")
    return cast(VenueChoice, upper)


def range_days(start: datetime, end: datetime) -> list[date]:
    """Trading dates touched by [start, end)."""
    if end <= start:
        return []
    return krx.trading_days(krx.trading_date(start), krx.trading_date(end - timedelta(microseconds=1)))


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


def symbol_list(symbols: Sequence[str] | None) -> list[str] | None:
    if symbols is None:
        return None
    out = sorted(set(symbols))
    if not out:
        raise QueryError("empty symbol list: name at least one symbol, or pass None for all")
    return out


def finish(columns: dict[str, list[Any]] | pa.Table) -> pa.Table:
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
            out["venue"].append(rows["venue"][min(present.values())])
            out["volume"].append(0)
            out["trade_count"].append(0)
            out["turnover"].append(Decimal(0))
            out["vwap"].append(None)
    return finish(out)
