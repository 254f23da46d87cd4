"""The public query API: a ``Vault`` answers for ticks, candles and symbols from the hot store, the lake, or both.

``source="auto"`` reads the hot store for the recent trading dates it holds in full and the lake
for everything before, split at one trading-date boundary (for 1w/1mo at a period boundary), so
no bar or tick comes from both stores and none is missed. ``as_of`` pins the lake to a DuckLake
snapshot (id) or instant, so a backtest re-run after later recovery upserts sees the same data;
the hot store cannot time-travel, so ``as_of`` reads the lake only.

Ranges: a ``date`` (or ``"YYYY-MM-DD"``) means a whole KST trading date and ``end`` is then
inclusive (and may be left out for one date); a ``datetime`` (or ISO text; naive means KST) is an
instant and ``end`` is exclusive. Arrow results keep exact decimals: ticks as ``TICK_SCHEMA``
ordered by symbol, trading date, cum_volume; candles as ``CANDLE_SCHEMA`` ordered by symbol,
bucket. pandas and polars results are shaped as docs/queries.md describes.

Every store call goes through ``_Stores``; the stores raise the tickvault family: callers see
``QueryError`` for a question that cannot be answered as asked and ``StoreError``
(``StoreUnavailable``, ``StoreNotInitialized``, ``LakeLocked``) for a store problem.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pyarrow as pa
import pyarrow.compute as pc

from ..core import bars
from ..core import calendar as krx
from ..core.adjustments import apply as apply_adjustments
from ..core.adjustments import check_timeframe_period, kst_days
from ..core.calendar import trading_date, trading_day_bounds
from ..core.config import Settings, load_settings
from ..core.dates import HELP as DATE_HELP
from ..core.dates import looks_like_day, parse_day
from ..core.errors import (
    ConfigError,
    PartialAnswer,
    QueryError,
    StoreNotInitialized,
    StoreUnavailable,
    TickvaultError,
)
from ..core.extras import import_optional
from ..core.timeframe import Timeframe, parse_timeframe
from ..core.wire import KST, SYMBOL_RE, TICK_SCHEMA, UTC, Venue

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from ..stores.hot import HotStore
    from ..stores.lake import Lake

log = logging.getLogger(__name__)

Source = Literal["auto", "hot", "cold"]
Session = Literal["regular", "extended", "all"]  # "all" = "extended", kept for earlier callers
VenueArg = Literal["KRX", "NXT", "ALL"]
Output = Literal["arrow", "pandas", "polars"]
#: A KST trading date (``date`` or ``"YYYY-MM-DD"``) or an instant (``datetime`` or ISO-8601 text; naive = KST).
TimeLike = date | datetime | str
#: A lake snapshot id (``Vault.snapshot()``, int or digits) or an instant.
AsOf = int | datetime | str
#: One code (``"005930"``), several (a list, or ``"005930,000660"``), or None (or ``"all"``) for every symbol.
Symbols = str | Sequence[str] | None

SOURCES: tuple[Source, ...] = ("auto", "hot", "cold")
#: ``coverage`` also answers per store: "both" lists each store's own rows.
CoverageSource = Literal["both", "auto", "hot", "cold"]
#: The first KST date ``coverage()`` without a start looks at.
EARLIEST = date(2000, 1, 1)
SNAPSHOT_SCHEMA = pa.schema([("id", pa.int64()), ("time", pa.timestamp("us", tz="UTC")), ("kind", pa.string()), ("detail", pa.string())])
COVERAGE_SCHEMA = pa.schema([
    ("store", pa.string()), ("day", pa.date32()), ("venue", pa.string()), ("symbol", pa.string()), ("ticks", pa.int64()),
    ("first_ts", pa.timestamp("us", tz="UTC")), ("last_ts", pa.timestamp("us", tz="UTC")), ("proven", pa.bool_()),
])
SESSIONS: tuple[Session, ...] = ("regular", "extended", "all")
OUTPUTS: tuple[Output, ...] = ("arrow", "pandas", "polars")
TIME_ZONE = "Asia/Seoul"


@dataclass(frozen=True, slots=True)
class Segment:
    """One store's share of a question: ``[start, end)`` read from ``source``."""

    source: Literal["hot", "cold"]
    start: datetime
    end: datetime


# --- argument parsing -------------------------------------------------------------------


def parse_symbols(symbols: Symbols) -> list[str] | None:
    """``"005930,000660"`` or a list -> sorted unique symbols; None = every symbol."""
    if symbols is None or (isinstance(symbols, str) and symbols.strip().lower() in ("all", "*")):
        return None
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    out = sorted({s.strip() for s in items if s and s.strip()})
    if not out:
        raise QueryError("no symbol given: name at least one, e.g. 005930 or 005930,000660")
    suffixed = [s for s in out if s.endswith("_NX")]
    if suffixed:
        raise QueryError(f"{', '.join(suffixed)}: symbols are plain codes on every venue; ask for venue=\"NXT\" instead of _NX")
    bad = [s for s in out if not SYMBOL_RE.match(s)]
    if bad:
        raise QueryError(f"not a KRX symbol: {', '.join(bad)} (want 6 characters like 005930)")
    return out


def _parse_time(value: TimeLike, name: str, now: datetime | None = None) -> date | datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=KST)
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if looks_like_day(text):
        return parse_day(text, name=name, now=now)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name}: {value!r} is neither a date ({DATE_HELP}) nor an ISO-8601 time (2026-11-20T09:30:00+09:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=KST)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=KST)


def _warn_midnight_end(end: TimeLike) -> None:
    """A pandas/datetime midnight as ``end`` is an exclusive instant: that whole day is left out (a common trap)."""
    if not isinstance(end, datetime):
        return
    at = end if end.tzinfo else end.replace(tzinfo=KST)
    local = at.astimezone(KST)
    if local.time() == datetime.min.time():
        warnings.warn(
            f"end {local.isoformat()} is an instant and excludes the day {local.date()}; "
            f"pass the date ('{local.date()}' or a datetime.date) to include it",
            UserWarning, stacklevel=4,
        )


def resolve_range(start: TimeLike, end: TimeLike | None = None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) as aware instants; a date end includes that whole KST date; no end = the start date.

    Dates may be spelled YYYY-MM-DD, YYYYMMDD, today, yesterday or -Nd (relative to ``now``)."""
    lo = _parse_time(start, "start", now)
    if end is None:
        if isinstance(lo, datetime):
            raise QueryError(f"start {lo.isoformat()} is an instant: give an end too, or a date (YYYY-MM-DD) for one whole trading date")
        end = lo
    _warn_midnight_end(end)
    hi = _parse_time(end, "end", now)
    lo_at = lo if isinstance(lo, datetime) else _midnight(lo)
    hi_at = hi if isinstance(hi, datetime) else _midnight(hi) + timedelta(days=1)
    if hi_at <= lo_at:
        raise QueryError(f"empty range: end {hi_at.isoformat()} is not after start {lo_at.isoformat()}")
    return lo_at, hi_at


def parse_as_of(value: AsOf | None) -> int | datetime | None:
    """A lake snapshot id (int or digits) or an instant (datetime or ISO text; naive = KST)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
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


def _choice(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise QueryError(f"unknown {name} {value!r}: use {', '.join(allowed)}")


def _check_output(output: str) -> None:
    """Before any store is asked: the output is known and its library installed."""
    _choice(output, OUTPUTS, "output")
    if output != "arrow":
        import_optional(output, output, f"output={output!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- the seam between the API and the stores -------------------------------------------------


class _Stores:
    """The two stores, opened on first use (each maps its own driver errors into the tickvault family).

    The lake is never created by a query: a missing lake is ``StoreNotInitialized``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._hot: HotStore | None = None
        self._lake: Lake | None = None

    def hot(self) -> HotStore:
        if self._hot is None:
            from ..stores.hot import HotStore

            self._hot = HotStore(self.settings, replica=True)  # reads only: a replica when one is set
        return self._hot

    def lake(self) -> Lake:
        if self._lake is None:
            from ..stores.lake import Lake

            lake = Lake(self.settings)
            lake.require()
            self._lake = lake
        return self._lake

    def close(self) -> None:
        if self._lake is not None:
            self._lake.close()
            self._lake = None
        if self._hot is not None:
            self._hot.close()
            self._hot = None

    def ticks(self, seg: Segment, symbols: list[str] | None, venue: Venue | None, as_of: int | datetime | None) -> pa.Table:
        if seg.source == "hot":
            return self.hot().read_ticks(seg.start, seg.end, symbols, venue)
        return self.lake().read_ticks(seg.start, seg.end, symbols, venue, as_of=as_of)

    def candles(self, seg: Segment, tf: Timeframe, symbols: list[str] | None, session: bars.Session, venue: bars.VenueChoice,
                as_of: int | datetime | None) -> pa.Table:
        if seg.source == "hot":
            return self.hot().candles(tf, seg.start, seg.end, symbols, session, venue)
        return self.lake().candles(tf, seg.start, seg.end, symbols, session, venue, as_of=as_of)

    def coverage(self, seg: Segment, as_of: int | datetime | None) -> list[dict[str, Any]]:
        """Per (KST date, venue, symbol) of the segment: ticks, first and last trade, and whether the last
        reconcile proved that series complete."""
        store: HotStore | Lake = self.hot() if seg.source == "hot" else self.lake()
        rows = self.hot().coverage(seg.start, seg.end) if seg.source == "hot" else self.lake().coverage(seg.start, seg.end, as_of)
        if not rows:
            return []
        proven = store.integrity_status(min(r["day"] for r in rows), max(r["day"] for r in rows))
        return [{"store": seg.source, **row, "proven": proven.get((row["day"], row["venue"], row["symbol"])) == "ok"} for row in rows]

    def universe(self, seg: Segment, day: date) -> set[tuple[str, str]]:
        """The day's universe (the symbols subscribed that day) as the segment's store recorded it."""
        store: HotStore | Lake = self.hot() if seg.source == "hot" else self.lake()
        return set(store.read_universe(day))

    def first_hot_day_with_ticks(self, first: date, last: date) -> date | None:
        """The first trading date in [first, last] the hot store has a tick for (None: none, or no ticks table)."""
        for day in krx.iter_trading_days(first, last):
            start, end = trading_day_bounds(day)
            try:
                if self.hot().has_ticks(start, end):
                    return day
            except StoreNotInitialized:
                log.warning("hot store schema %s has no ticks table; reading the lake only", self.settings.pg_schema)
                return None
        return None

    def snapshot(self) -> int:
        return self.lake().snapshot_id()

    def lake_has_day(self, day: date) -> bool:
        start, end = trading_day_bounds(day)
        return self.lake().has_ticks(start, end)


# --- the public surface -------------------------------------------------------------------


def _settings(settings: Settings | None, config_file: str | PathLike[str] | None, overrides: dict[str, Any]) -> Settings:
    """Settings from the arguments, with every way they can be wrong raised as one ConfigError line."""
    from pydantic import ValidationError

    try:
        if settings is None:
            return load_settings(None if config_file is None else Path(config_file), **overrides)
        if config_file is not None:
            raise ConfigError("pass either settings or config_file to Vault, not both")
        if not overrides:
            return settings
        return Settings.model_validate({**settings.model_dump(), **overrides})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "settings"
        raise ConfigError(f"bad setting {where}: {problem['msg']} (see docs/configuration.md)") from None
    except OSError as exc:  # config file missing or readable by others
        raise ConfigError(str(exc)) from None


class Vault:
    """One installation's tick archive: ticks, candles and symbols from the hot store, the lake, or both.

    ``Vault()`` reads the settings from ``TICKVAULT_*`` variables (and the TOML file named by
    ``TICKVAULT_CONFIG`` or ``config_file``); ``Vault(settings)`` uses the given ones; keyword
    overrides (``Vault(pg_url=..., lake_dir=...)``) replace single settings. Stores open on first
    use and stay open until ``close()`` or the end of a ``with`` block, so a loop of questions
    pays for connecting once. ``clock`` supplies "now" (default: the system clock): it decides
    which dates the hot store holds in full and where ``fill`` stops.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        /,
        *,
        config_file: str | PathLike[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        **overrides: Any,
    ) -> None:
        self.settings: Settings = _settings(settings, config_file, overrides)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stores = _Stores(self.settings)

    def close(self) -> None:
        """Release the store connections; the Vault opens them again if asked another question."""
        self._stores.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- ticks
    @overload
    def ticks(self, symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
              venue: VenueArg = "ALL", as_of: AsOf | None = None, output: Literal["arrow"] = "arrow",
              exact: bool = False, adjusted: bool = False) -> pa.Table: ...
    @overload
    def ticks(self, symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
              venue: VenueArg = "ALL", as_of: AsOf | None = None, output: Literal["pandas"],
              exact: bool = False, adjusted: bool = False) -> pd.DataFrame: ...
    @overload
    def ticks(self, symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
              venue: VenueArg = "ALL", as_of: AsOf | None = None, output: Literal["polars"],
              exact: bool = False, adjusted: bool = False) -> pl.DataFrame: ...
    @overload
    def ticks(self, symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
              venue: VenueArg = "ALL", as_of: AsOf | None = None, output: Output,
              exact: bool = False, adjusted: bool = False) -> pa.Table | pd.DataFrame | pl.DataFrame: ...

    def ticks(self, symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
              venue: VenueArg = "ALL", as_of: AsOf | None = None, output: Output = "arrow",
              exact: bool = False, adjusted: bool = False) -> pa.Table | pd.DataFrame | pl.DataFrame:
        """Every trade of ``symbols`` from ``start`` to ``end``, ordered by symbol, venue, trading date, cum_volume.

        ``vault.ticks("005930", "2026-11-27")`` is one whole KST trading date. ``venue``: ``"KRX"``,
        ``"NXT"`` or ``"ALL"`` (both venues' trades, each row with its venue). ``source``: ``"auto"``
        (hot store for the dates it holds in full, the lake before), ``"hot"`` or ``"cold"``;
        ``as_of``: read the lake as of a snapshot id or instant; ``output``: ``"arrow"`` (exact
        decimals), ``"pandas"`` or ``"polars"`` (prices as floats unless ``exact=True``). ``adjusted=True``:
        prices back-adjusted to the latest date with the stored factors (``tickvault adjustments refresh``),
        volumes and cum_volume divided by them.
        """
        _check_output(output)
        chosen = bars.check_venue(venue)
        wanted = parse_symbols(symbols)
        lo, hi = resolve_range(start, end, self._clock())
        pinned = parse_as_of(as_of)
        one_venue = None if chosen == "ALL" else chosen
        parts = [self._stores.ticks(seg, wanted, one_venue, pinned) for seg in self._plan(source, lo, hi, None, pinned)]
        table = pa.concat_tables(parts) if parts else TICK_SCHEMA.empty_table()
        if len(parts) > 1:  # stable: each symbol's lake rows stay before its hot rows
            table = table.take(pc.sort_indices(table, [("symbol", "ascending"), ("venue", "ascending")]))
        if adjusted:
            table = self._adjusted(table, "ts", wanted, lo, hi)
        return _convert(table, output, exact=exact, time_column="ts", one_symbol=wanted is not None and len(wanted) == 1)

    # --- candles
    @overload
    def candles(self, symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *,
                source: Source = "auto", venue: VenueArg = "ALL", session: Session = "regular", fill: bool = False, as_of: AsOf | None = None,
                output: Literal["arrow"] = "arrow", exact: bool = False, wide: bool | str = False, adjusted: bool = False) -> pa.Table: ...
    @overload
    def candles(self, symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *,
                source: Source = "auto", venue: VenueArg = "ALL", session: Session = "regular", fill: bool = False, as_of: AsOf | None = None,
                output: Literal["pandas"], exact: bool = False, wide: bool | str = False, adjusted: bool = False) -> pd.DataFrame: ...
    @overload
    def candles(self, symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *,
                source: Source = "auto", venue: VenueArg = "ALL", session: Session = "regular", fill: bool = False, as_of: AsOf | None = None,
                output: Literal["polars"], exact: bool = False, wide: bool | str = False, adjusted: bool = False) -> pl.DataFrame: ...
    @overload
    def candles(self, symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *,
                source: Source = "auto", venue: VenueArg = "ALL", session: Session = "regular", fill: bool = False, as_of: AsOf | None = None,
                output: Output, exact: bool = False, wide: bool | str = False, adjusted: bool = False) -> pa.Table | pd.DataFrame | pl.DataFrame: ...

    def candles(self, symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *,
                source: Source = "auto", venue: VenueArg = "ALL", session: Session = "regular", fill: bool = False, as_of: AsOf | None = None,
                output: Output = "arrow", exact: bool = False, wide: bool | str = False, adjusted: bool = False) -> pa.Table | pd.DataFrame | pl.DataFrame:
        """OHLCV bars of ``symbols`` at timeframe ``tf`` (``"1m"``…``"480m"``, ``"1h"``…``"8h"``, ``"1d"``, ``"1w"``, ``"1mo"``).

        Open and close are the first and last trade by cum_volume; buckets start at the session
        open (KST). ``venue``: ``"KRX"``, ``"NXT"`` or ``"ALL"`` (default: both venues' trades in
        one bar — volumes and counts summed, open/close the earliest/latest trade by time, ties
        KRX before NXT, then cum_volume). ``session``: ``"regular"`` (KRX's open to its closing
        auction) or ``"extended"`` (every session, 07:00-20:00); ``fill=True`` adds the empty buckets of the
        regular session as flat bars at the previous close. ``source``, ``as_of``, ``output`` and
        ``exact`` as for ``ticks``. ``wide=True`` (pandas or polars) gives a panel: one row per bucket, one
        column per symbol, holding ``close`` (or the column named, e.g. ``wide="volume"``). ``adjusted=True``
        (intraday and 1d): prices back-adjusted to the latest date (수정주가), volumes divided by the factor.
        """
        _check_output(output)
        column = _wide_column(wide, output)
        timeframe = parse_timeframe(tf)
        if adjusted:
            check_timeframe_period(timeframe.period)
        chosen_session, chosen = bars.check_session(session), bars.check_venue(venue)
        wanted = parse_symbols(symbols)
        lo, hi = resolve_range(start, end, self._clock())
        pinned = parse_as_of(as_of)
        parts = [self._stores.candles(seg, timeframe, wanted, chosen_session, chosen, pinned)
                 for seg in self._plan(source, lo, hi, timeframe, pinned)]
        table = pa.concat_tables(parts) if parts else bars.empty_candles()
        if len(parts) > 1:
            table = table.sort_by([("symbol", "ascending"), ("bucket", "ascending")])
        if adjusted:
            table = self._adjusted(table, "bucket", wanted, lo, hi)
        if fill:
            table = bars.fill_forward(table, timeframe, lo, hi, now=self._clock())
        if column is not None:
            return _panel(table, column, output, exact=exact)
        return _convert(table, output, exact=exact, time_column="bucket", one_symbol=wanted is not None and len(wanted) == 1)

    # --- what the archive holds
    def symbols(self, day: TimeLike | None = None, *, start: TimeLike | None = None, end: TimeLike | None = None,
                venue: VenueArg = "ALL", source: Source = "auto", as_of: AsOf | None = None) -> list[str]:
        """The symbols the archive holds ticks for on one KST date (``day``) or from ``start`` to ``end``
        (on ``venue``, or either), sorted — a backtest's universe. No date at all: every symbol it holds."""
        if isinstance(day, datetime):
            raise QueryError(f"symbols() takes a date, not the instant {day.isoformat()}")
        if day is not None and start is not None:
            raise QueryError("give either a date or start/end, not both")
        table = self.coverage(start if day is None else day, end if day is None else None, venue=venue, source=source, as_of=as_of)
        return sorted(set(table.column("symbol").to_pylist()))

    def coverage(self, start: TimeLike | None = None, end: TimeLike | None = None, *, symbols: Symbols = None, venue: VenueArg = "ALL",
                 source: CoverageSource = "both", as_of: AsOf | None = None) -> pa.Table:
        """What the archive holds: one row per store, KST date, venue and symbol with the tick count, the first
        and last trade, and ``proven`` (the last reconcile found that series complete and both stores agreeing).

        ``source="both"`` lists each store's own rows (default); ``"auto"`` (the stores a query would read),
        ``"hot"`` or ``"cold"``. No ``start``: from the first date either store could hold; no ``end``: the start
        date (or today when no start either). Columns: ``COVERAGE_SCHEMA``.
        """
        now = self._clock()
        if start is None:
            lo, hi = _midnight(EARLIEST), _midnight(trading_date(now)) + timedelta(days=1)
        else:
            lo, hi = resolve_range(start, end, now)
        return self._coverage(lo, hi, symbols, venue, source, as_of)

    def _coverage(self, lo: datetime, hi: datetime, symbols: Symbols, venue: VenueArg, source: CoverageSource,
                  as_of: AsOf | None) -> pa.Table:
        wanted = parse_symbols(symbols)
        chosen = bars.check_venue(venue)
        pinned = parse_as_of(as_of)
        if source == "both":
            segments = [Segment("cold", lo, hi)] if pinned is not None else [Segment("hot", lo, hi), Segment("cold", lo, hi)]
        else:
            segments = self._plan(source, lo, hi, None, pinned)
        rows = [row for seg in segments for row in self._stores.coverage(seg, pinned)
                if chosen in ("ALL", row["venue"]) and (wanted is None or row["symbol"] in wanted)]
        return pa.Table.from_pylist(rows, schema=COVERAGE_SCHEMA)

    def why_empty(self, symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, venue: VenueArg = "ALL",
                  source: Source = "auto", as_of: AsOf | None = None) -> str:
        """Why a question with these arguments has no rows, in one line (for an empty answer)."""
        lo, hi = resolve_range(start, end, self._clock())
        first, last = trading_date(lo), trading_date(hi - timedelta(microseconds=1))
        span = str(first) if first == last else f"{first} to {last}"
        days = krx.trading_days(first, last)
        if not days:
            return f"{span}: not a trading day (weekend or KRX holiday); pick a trading date"
        held = self._coverage(lo, hi, None, venue, source, as_of)
        on = "" if venue == "ALL" else f" on {venue}"
        if held.num_rows == 0 and source == "hot" and last <= self._oldest_kept_day():
            return (f"{span} is outside the hot store's retention (tick_retention_days={self.settings.tick_retention_days}, "
                    f"it keeps dates after {self._oldest_kept_day()}); use --source cold or auto")
        if held.num_rows == 0:
            return f"the archive holds no ticks{on} for {span} (nothing archived then); `tickvault coverage` shows what it holds"
        wanted = parse_symbols(symbols)
        present = set(held.column("symbol").to_pylist())
        missing = [s for s in wanted or [] if s not in present]
        if not missing:
            return (f"no trades of the asked symbols{on} inside the asked range or session (the archive holds them on {span}: "
                    "widen the range or use --session extended)")
        seg = Segment("cold" if source == "cold" or as_of is not None else "hot", lo, hi)
        try:
            listed = {symbol for day in days[:5] for _, symbol in self._stores.universe(seg, day)}
        except TickvaultError:
            listed = set()
        known = [s for s in missing if s in listed]
        unknown = [s for s in missing if s not in listed]
        parts = []
        if known:
            parts.append(f"{', '.join(known)}: in the day's universe but no trades{on} on {span}")
        if unknown:
            example = ", ".join(sorted(present)[:3])
            parts.append(f"{', '.join(unknown)}: unknown symbol{'s' if len(unknown) > 1 else ''}{on} on {span} "
                         f"(the archive holds {len(present)} others, e.g. {example}; `tickvault symbols --date {days[0]}` lists them)")
        return "; ".join(parts)

    def adjustments(self, symbols: Symbols = None, start: TimeLike | None = None, end: TimeLike | None = None) -> pa.Table:
        """The stored adjustment factors (``ADJUSTMENT_SCHEMA``: symbol, day, factor, close, adjusted_close, source,
        refreshed_at) of ``symbols`` (or all) from ``start`` to ``end`` (default: every date)."""
        if start is None:
            lo, hi = _midnight(EARLIEST), _midnight(trading_date(self._clock())) + timedelta(days=1)
        else:
            lo, hi = resolve_range(start, end, self._clock())
        return self._stores.lake().read_adjustments(trading_date(lo), trading_date(hi - timedelta(microseconds=1)), parse_symbols(symbols))

    def _adjusted(self, table: pa.Table, time_column: str, wanted: list[str] | None, lo: datetime, hi: datetime) -> pa.Table:
        """``table`` back-adjusted with the factors of its symbols and dates (factor 1 where none is stored)."""
        if table.num_rows == 0:
            return table
        factors = self._stores.lake().read_adjustments(trading_date(lo), trading_date(hi - timedelta(microseconds=1)), wanted)
        return apply_adjustments(table, factors, kst_days(table.column(time_column)))

    def snapshots(self, limit: int = 50, since: TimeLike | None = None) -> pa.Table:
        """The lake's snapshots, newest first (``SNAPSHOT_SCHEMA``): id, time, kind (archiver batch, recovery,
        reconcile, rebuild, compaction, maintenance, schema) and detail. Any id (or time) is a valid ``as_of``."""
        if limit < 1:
            raise QueryError(f"limit {limit}: give at least 1")
        after: datetime | None = None
        if since is not None:
            moment = _parse_time(since, "since", self._clock())
            after = moment if isinstance(moment, datetime) else _midnight(moment)
        return pa.Table.from_pylist(self._stores.lake().snapshots(limit, after), schema=SNAPSHOT_SCHEMA)

    def snapshot(self) -> int:
        """The lake's current snapshot id: pass it as ``as_of=`` to read exactly today's data again later."""
        return self._stores.snapshot()

    def plan(self, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
             tf: str | Timeframe | None = None, as_of: AsOf | None = None) -> list[Segment]:
        """Which store answers which part of the range: the routing behind every question, for inspection."""
        lo, hi = resolve_range(start, end, self._clock())
        return self._plan(source, lo, hi, None if tf is None else parse_timeframe(tf), parse_as_of(as_of))

    # --- routing
    def _oldest_kept_day(self) -> date:
        return trading_date(self._clock() - timedelta(days=self.settings.tick_retention_days))

    def _hot_first_day(self, until: date) -> date | None:
        """The first trading date the hot store holds in full, or None if it holds none up to ``until``.

        Retention drops a whole date once it ended ``tick_retention_days`` ago; the date after the
        oldest one retention still keeps is taken (one date of margin, for chunking that is not
        aligned to KST dates). A hot store younger than its retention starts at its first date
        with data; a date on which it started mid-day would be partial, which recovery/rebuild
        repair — see docs/queries.md.
        """
        first = krx.next_trading_day(self._oldest_kept_day())
        if first > until:
            return None
        return self._stores.first_hot_day_with_ticks(first, until)

    def _without_hot(self, start: datetime, end: datetime, outage: StoreUnavailable) -> list[Segment]:
        """``auto`` while the hot store is down: the lake answers the whole range. Dates the hot store
        would have answered and the lake does not hold make the answer partial (``PartialAnswer``);
        otherwise a plain warning says the newest ticks may be missing."""
        first = max(krx.next_trading_day(self._oldest_kept_day()), trading_date(start))
        last = min(trading_date(end - timedelta(microseconds=1)), trading_date(self._clock()))
        missing = [day for day in krx.iter_trading_days(first, last) if first <= last and not self._stores.lake_has_day(day)]
        reason = str(outage).split(";")[0]
        if missing:
            span = str(missing[0]) if len(missing) == 1 else f"{len(missing)} trading dates {missing[0]} to {missing[-1]}"
            warnings.warn(PartialAnswer(f"{reason}; answered from the lake, which lacks {span}: that part is missing — "
                                        "ask again when PostgreSQL is back (TICKVAULT_PG_URL)"), stacklevel=4)
        else:
            warnings.warn(f"{reason}; answered from the lake, which holds every date asked (the newest ticks of today may be missing)",
                          UserWarning, stacklevel=4)
        return [Segment("cold", start, end)]

    def _plan(self, source: str, start: datetime, end: datetime, tf: Timeframe | None, as_of: int | datetime | None) -> list[Segment]:
        _choice(source, SOURCES, "source")
        if as_of is not None:
            if source == "hot":
                raise QueryError("as_of pins the lake; the hot store has no snapshots — use source=cold or auto")
            return [Segment("cold", start, end)]
        if source == "hot":
            oldest_kept = self._oldest_kept_day()
            if trading_date(start) <= oldest_kept:
                log.warning(
                    "hot store keeps ticks only after %s (tick_retention_days=%d): earlier dates may be missing; "
                    "use source auto or cold for them", oldest_kept, self.settings.tick_retention_days,
                )
            return [Segment("hot", start, end)]
        if source == "cold":
            return [Segment("cold", start, end)]
        last_day = trading_date(end - timedelta(microseconds=1))
        try:
            boundary_day = self._hot_first_day(min(last_day, trading_date(self._clock())))
        except StoreUnavailable as exc:
            return self._without_hot(start, end, exc)
        if boundary_day is None:
            return [Segment("cold", start, end)]
        if tf is not None and not tf.intraday:
            while tf.period_start(boundary_day) != boundary_day:  # split only between whole periods
                boundary_day = krx.next_trading_day(boundary_day)
        boundary = _midnight(boundary_day)
        segments = []
        if start < boundary:
            segments.append(Segment("cold", start, min(end, boundary)))
        if end > boundary:
            segments.append(Segment("hot", max(start, boundary), end))
        return segments


# --- output shapes --------------------------------------------------------------------------


def _float_prices(table: pa.Table) -> pa.Table:
    columns = [c.cast(pa.float64()) if pa.types.is_decimal(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _time_columns(table: pa.Table) -> list[str]:
    return [f.name for f in table.schema if pa.types.is_timestamp(f.type)]


def _convert(table: pa.Table, output: Output, *, exact: bool, time_column: str, one_symbol: bool) -> pa.Table | pd.DataFrame | pl.DataFrame:
    """The Arrow result in the asked shape (docs/queries.md, "Output shapes")."""
    if output == "pandas":
        frame = (table if exact else _float_prices(table)).to_pandas()
        for name in _time_columns(table):
            frame[name] = frame[name].dt.tz_convert(TIME_ZONE)
        if one_symbol:
            return frame.drop(columns="symbol").set_index(time_column)
        return frame.set_index(["symbol", time_column])
    if output == "polars":
        import polars

        converted = polars.from_arrow(table if exact else _float_prices(table))
        assert isinstance(converted, polars.DataFrame)  # from_arrow gives a Series only for an Array
        return converted.with_columns([polars.col(n).dt.convert_time_zone(TIME_ZONE) for n in _time_columns(table)])
    return table


def _wide_column(wide: bool | str, output: str) -> str | None:
    """The candle column a ``wide`` panel holds (None: no panel); checked before any store is asked."""
    if wide is False:
        return None
    column = "close" if wide is True else str(wide)
    if output == "arrow":
        raise QueryError("wide panels are a pandas or polars shape: pass output='pandas' or 'polars'")
    if column not in bars.CANDLE_SCHEMA.names or column in ("bucket", "symbol", "venue"):
        values = ", ".join(n for n in bars.CANDLE_SCHEMA.names if n not in ("bucket", "symbol", "venue"))
        raise QueryError(f"wide={wide!r}: not a candle value column; use one of {values}")
    return column


def _panel(table: pa.Table, column: str, output: Output, *, exact: bool) -> pd.DataFrame | pl.DataFrame:
    """One row per bucket (KST), one column per symbol, holding ``column`` (missing bars are null/NaN)."""
    narrow = table.select(["bucket", "symbol", column])
    if output == "polars":
        import polars

        lazy = _convert(narrow, "polars", exact=exact, time_column="bucket", one_symbol=False)
        assert isinstance(lazy, polars.DataFrame)
        return lazy.pivot(on="symbol", index="bucket", values=column).sort("bucket")
    import pandas

    frame = _convert(narrow, "pandas", exact=exact, time_column="bucket", one_symbol=False)
    assert isinstance(frame, pandas.DataFrame)
    panel: pd.DataFrame = frame[column].unstack("symbol").sort_index()
    return panel


# --- module-level conveniences ------------------------------------------------------------


@overload
def ticks(symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto", as_of: AsOf | None = None,
          output: Literal["arrow"] = "arrow", exact: bool = False, settings: Settings | None = None) -> pa.Table: ...
@overload
def ticks(symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto", as_of: AsOf | None = None,
          output: Literal["pandas"], exact: bool = False, settings: Settings | None = None) -> pd.DataFrame: ...
@overload
def ticks(symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto", as_of: AsOf | None = None,
          output: Literal["polars"], exact: bool = False, settings: Settings | None = None) -> pl.DataFrame: ...
@overload
def ticks(symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto", as_of: AsOf | None = None,
          output: Output, exact: bool = False, settings: Settings | None = None) -> pa.Table | pd.DataFrame | pl.DataFrame: ...


def ticks(symbols: Symbols, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto", as_of: AsOf | None = None,
          output: Output = "arrow", exact: bool = False, settings: Settings | None = None) -> pa.Table | pd.DataFrame | pl.DataFrame:
    """``Vault(settings).ticks(...)`` in one call: opens the stores, asks, closes them."""
    with Vault(settings) as vault:
        return vault.ticks(symbols, start, end, source=source, as_of=as_of, output=output, exact=exact)


@overload
def candles(symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
            session: Session = "regular", fill: bool = False, as_of: AsOf | None = None, output: Literal["arrow"] = "arrow",
            exact: bool = False, settings: Settings | None = None) -> pa.Table: ...
@overload
def candles(symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
            session: Session = "regular", fill: bool = False, as_of: AsOf | None = None, output: Literal["pandas"],
            exact: bool = False, settings: Settings | None = None) -> pd.DataFrame: ...
@overload
def candles(symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
            session: Session = "regular", fill: bool = False, as_of: AsOf | None = None, output: Literal["polars"],
            exact: bool = False, settings: Settings | None = None) -> pl.DataFrame: ...
@overload
def candles(symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
            session: Session = "regular", fill: bool = False, as_of: AsOf | None = None, output: Output,
            exact: bool = False, settings: Settings | None = None) -> pa.Table | pd.DataFrame | pl.DataFrame: ...


def candles(symbols: Symbols, tf: str | Timeframe, start: TimeLike, end: TimeLike | None = None, *, source: Source = "auto",
            session: Session = "regular", fill: bool = False, as_of: AsOf | None = None, output: Output = "arrow",
            exact: bool = False, settings: Settings | None = None) -> pa.Table | pd.DataFrame | pl.DataFrame:
    """``Vault(settings).candles(...)`` in one call: opens the stores, asks, closes them."""
    with Vault(settings) as vault:
        return vault.candles(symbols, tf, start, end, source=source, session=session, fill=fill, as_of=as_of, output=output, exact=exact)
