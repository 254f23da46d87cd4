"""One way to ask for ticks and candles, answered by the hot store, the lake, or both.

``source="auto"`` reads the hot store for the recent trading dates it fully holds and the
lake for everything before, split at one trading-date boundary (for 1w/1mo at a period
boundary), so no bar or tick comes from both and none is missed. ``as_of`` pins the lake to a
DuckLake snapshot (id) or instant, so a backtest re-run after later recovery upserts sees the
same data; the hot store cannot time-travel, so ``as_of`` reads the lake only.

Ranges: a ``date`` (or ``"YYYY-MM-DD"``) means a whole KST trading date and ``end`` is then
inclusive; a ``datetime`` (or ISO text; naive means KST) is an instant and ``end`` is exclusive.
Results are Arrow tables: ticks as ``model.TICK_SCHEMA`` ordered by symbol, trading date,
cum_volume; candles as ``bars.CANDLE_SCHEMA`` ordered by symbol, bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from ..core import bars
from ..core import calendar as krx
from ..core.config import Settings, load_settings
from ..core.errors import QueryError, StoreNotInitialized
from ..core.wire import KST, SYMBOL_RE, TICK_SCHEMA, UTC, kst_date
from ..core.timeframe import Timeframe, parse_timeframe

log = logging.getLogger(__name__)

Source = Literal["auto", "hot", "cold"]
SOURCES: tuple[str, ...] = ("auto", "hot", "cold")
AsOf = int | datetime | None
TimeLike = date | datetime | str


@dataclass(frozen=True, slots=True)
class Segment:
    """One store's share of a query: [start, end) read from ``source`` ("hot" or "cold")."""

    source: str
    start: datetime
    end: datetime


# --- argument parsing -------------------------------------------------------------------


def parse_symbols(symbols: str | Sequence[str] | None) -> list[str] | None:
    """``"005930,000660"`` or a list -> sorted unique symbols; None = every symbol."""
    if symbols is None:
        return None
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    out = sorted({s.strip() for s in items if s and s.strip()})
    if not out:
        raise QueryError("no symbol given: name at least one, e.g. 005930 or 005930,000660")
    bad = [s for s in out if not SYMBOL_RE.match(s)]
    if bad:
        raise QueryError(f"not a KRX symbol: {', '.join(bad)} (want 6 characters like 005930, optionally _NX)")
    return out


def _parse_time(value: TimeLike, name: str) -> date | datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=KST)
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name}: {value!r} is neither YYYY-MM-DD nor an ISO-8601 time (2026-11-20T09:30:00+09:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=KST)


def resolve_range(start: TimeLike, end: TimeLike) -> tuple[datetime, datetime]:
    """[start, end) as aware instants; a date end includes that whole KST date."""
    lo, hi = _parse_time(start, "start"), _parse_time(end, "end")
    if not isinstance(lo, datetime):
        lo = datetime(lo.year, lo.month, lo.day, tzinfo=KST)
    if not isinstance(hi, datetime):
        hi = datetime(hi.year, hi.month, hi.day, tzinfo=KST) + timedelta(days=1)
    if hi <= lo:
        raise QueryError(f"empty range: end {hi.isoformat()} is not after start {lo.isoformat()}")
    return lo, hi


def parse_as_of(value: int | datetime | str | None) -> AsOf:
    """A lake snapshot id (int or digits) or an instant (datetime or ISO text; naive = KST)."""
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=KST)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"as_of: {value!r} is neither a snapshot id nor an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=KST)


def check_source(source: str) -> Source:
    if source not in SOURCES:
        raise QueryError(f"unknown source {source!r}: use auto, hot or cold")
    return source  # type: ignore[return-value]


# --- the engine -------------------------------------------------------------------------


class QueryEngine:
    """Queries over one installation's stores. Opens each store on first use; close() when done."""

    def __init__(self, settings: Settings | None = None, now: datetime | None = None) -> None:
        self.settings = settings or load_settings()
        self._now = now  # fixed "now" for tests; None = the clock
        self._hot: Any = None
        self._lake: Any = None

    # stores
    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    def hot(self) -> Any:
        if self._hot is None:
            from ..stores.hot import HotStore

            self._hot = HotStore(self.settings)
        return self._hot

    def lake(self) -> Any:
        if self._lake is None:
            from ..stores.lake import Lake
            from ..stores.lake.connection import catalog_path

            if not catalog_path(Path(self.settings.lake_dir)).exists():
                raise QueryError(f"no lake at {self.settings.lake_dir}: run `tickvault init` or set TICKVAULT_LAKE_DIR")
            self._lake = Lake(self.settings)
        return self._lake

    def close(self) -> None:
        if self._lake is not None:
            self._lake.close()
        if self._hot is not None:
            self._hot.close()

    def __enter__(self) -> QueryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # routing
    def hot_first_day(self, until: date) -> date | None:
        """The first trading date the hot store holds in full, or None if it holds none up to ``until``.

        Retention drops a whole date once it ended ``tick_retention_days`` ago; the date after the
        oldest one retention still keeps is taken (one date of margin, for chunking that is not
        aligned to KST dates). A hot store younger than its retention starts at its first date
        with data; a date on which it started mid-day would be partial, which recovery/rebuild
        repair — see docs/queries.md.
        """
        oldest_kept = kst_date(self.now() - timedelta(days=self.settings.tick_retention_days))
        day = krx.next_trading_day(oldest_kept)
        if day > until:
            return None
        for candidate in krx.iter_trading_days(day, until):
            start = datetime(candidate.year, candidate.month, candidate.day, tzinfo=KST)
            try:
                found = self.hot().has_ticks(start, start + timedelta(days=1))
            except StoreNotInitialized:
                log.warning("hot store schema %s has no ticks table; reading the lake only", self.settings.pg_schema)
                return None
            if found:
                    return candidate
        return None

    def plan(self, source: str, start: datetime, end: datetime, tf: Timeframe | None = None, as_of: AsOf = None) -> list[Segment]:
        """Which store answers which part of [start, end)."""
        source = check_source(source)
        if as_of is not None:
            if source == "hot":
                raise QueryError("as_of pins the lake; the hot store has no snapshots — use source=cold or auto")
            return [Segment("cold", start, end)]
        if source == "hot":
            oldest_kept = kst_date(self.now() - timedelta(days=self.settings.tick_retention_days))
            if kst_date(start) <= oldest_kept:
                log.warning(
                    "hot store keeps ticks only after %s (tick_retention_days=%d): earlier dates may be missing; "
                    "use source auto or cold for them", oldest_kept, self.settings.tick_retention_days,
                )
        if source != "auto":
            return [Segment(source, start, end)]
        last_day = kst_date(end - timedelta(microseconds=1))
        boundary_day = self.hot_first_day(min(last_day, kst_date(self.now())))
        if boundary_day is None:
            return [Segment("cold", start, end)]
        if tf is not None and not tf.intraday:
            while tf.period_start(boundary_day) != boundary_day:  # split only between whole periods
                boundary_day = krx.next_trading_day(boundary_day)
        boundary = datetime(boundary_day.year, boundary_day.month, boundary_day.day, tzinfo=KST)
        segments = []
        if start < boundary:
            segments.append(Segment("cold", start, min(end, boundary)))
        if end > boundary:
            segments.append(Segment("hot", max(start, boundary), end))
        return segments

    # queries
    def ticks(
        self,
        symbols: str | Sequence[str] | None,
        start: TimeLike,
        end: TimeLike,
        source: str = "auto",
        as_of: int | datetime | str | None = None,
    ) -> pa.Table:
        wanted = parse_symbols(symbols)
        lo, hi = resolve_range(start, end)
        pinned = parse_as_of(as_of)
        parts = []
        for seg in self.plan(source, lo, hi, None, pinned):
            if seg.source == "hot":
                parts.append(self.hot().read_ticks(seg.start, seg.end, wanted))
            else:
                parts.append(self.lake().read_ticks(seg.start, seg.end, wanted, as_of=pinned))
        if not parts:
            return TICK_SCHEMA.empty_table()
        table = pa.concat_tables(parts)
        if len(parts) > 1:  # stable: each symbol's lake rows stay before its hot rows
            table = table.take(pa.compute.sort_indices(table, [("symbol", "ascending")]))
        return table

    def candles(
        self,
        symbols: str | Sequence[str] | None,
        tf: str | Timeframe,
        start: TimeLike,
        end: TimeLike,
        source: str = "auto",
        session: str = "regular",
        fill: bool = False,
        as_of: int | datetime | str | None = None,
    ) -> pa.Table:
        timeframe = parse_timeframe(tf)
        session = bars.check_session(session)
        wanted = parse_symbols(symbols)
        lo, hi = resolve_range(start, end)
        pinned = parse_as_of(as_of)
        parts = []
        for seg in self.plan(source, lo, hi, timeframe, pinned):
            if seg.source == "hot":
                parts.append(self._hot_candles(timeframe, seg, wanted, session))
            else:
                parts.append(self._lake_candles(timeframe, seg, wanted, session, pinned))
        table = pa.concat_tables(parts) if parts else bars.empty_candles()
        if len(parts) > 1:
            table = table.sort_by([("symbol", "ascending"), ("bucket", "ascending")])
        if fill:
            table = bars.fill_forward(table, timeframe, lo, hi, now=self.now())
        return table

    def _hot_candles(self, tf: Timeframe, seg: Segment, symbols: list[str] | None, session: str) -> pa.Table:
        return self.hot().candles(tf, seg.start, seg.end, symbols, session)  # type: ignore[arg-type]

    def _lake_candles(self, tf: Timeframe, seg: Segment, symbols: list[str] | None, session: str, as_of: AsOf) -> pa.Table:
        return self.lake().candles(tf, seg.start, seg.end, symbols, session, as_of=as_of)  # type: ignore[arg-type]


# --- module-level conveniences ------------------------------------------------------------


def ticks(
    symbols: str | Sequence[str] | None,
    start: TimeLike,
    end: TimeLike,
    source: str = "auto",
    as_of: int | datetime | str | None = None,
    settings: Settings | None = None,
) -> pa.Table:
    """Ticks of ``symbols`` in the range as an Arrow table (see the module doc for ranges)."""
    with QueryEngine(settings) as engine:
        return engine.ticks(symbols, start, end, source=source, as_of=as_of)


def candles(
    symbols: str | Sequence[str] | None,
    tf: str,
    start: TimeLike,
    end: TimeLike,
    source: str = "auto",
    session: str = "regular",
    fill: bool = False,
    as_of: int | datetime | str | None = None,
    settings: Settings | None = None,
) -> pa.Table:
    """Bars of ``symbols`` at timeframe ``tf`` (``"15m"``, ``"1d"``…) as an Arrow table."""
    with QueryEngine(settings) as engine:
        return engine.candles(symbols, tf, start, end, source=source, session=session, fill=fill, as_of=as_of)


def _float_decimals(table: pa.Table) -> pa.Table:
    columns = [c.cast(pa.float64()) if pa.types.is_decimal(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def to_pandas(table: pa.Table, exact: bool = False, tz: str = "Asia/Seoul") -> Any:
    """pandas DataFrame; prices as float64 unless ``exact`` (then Decimal objects), times in ``tz``."""
    frame = (table if exact else _float_decimals(table)).to_pandas()
    for name, dtype in zip(table.column_names, table.schema.types):
        if pa.types.is_timestamp(dtype):
            frame[name] = frame[name].dt.tz_convert(tz)
    return frame


def to_polars(table: pa.Table, exact: bool = False, tz: str = "Asia/Seoul") -> Any:
    """polars DataFrame; prices as Float64 unless ``exact`` (then Decimal), times in ``tz``."""
    import polars as pl

    frame = pl.from_arrow(table if exact else _float_decimals(table))
    return frame.with_columns(
        [pl.col(n).dt.convert_time_zone(tz) for n, t in zip(table.column_names, table.schema.types) if pa.types.is_timestamp(t)]
    )
