"""Trading calendar: which KST dates trade, and which sessions each venue (KRX, NXT) runs on them.

Holidays come from the ``holidays`` package's ``financial_holidays("XKRX")``, which ships its
data in the wheel (no network) and was found more current than ``exchange_calendars``' XKRX
(it knows 2026-06-03 local election day and 2026-07-17 Constitution Day). Older ``holidays``
releases miss some one-off closures, so a small local table patches them; the tests pin the
2024–2026 facts so a package upgrade that disagrees fails loudly. NXT follows the KRX holidays.

Session times are not in any package and they change (NXT opened 2025-03-04, KRX extends its
hours in 2026), so they are data: ``sessions.toml`` next to this module holds dated rules per
venue, the special days (first trading day of the year, college entrance exam day) and the
exam dates. A rule change is an edit there plus a test; this module only reads and checks it.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, get_args

import holidays
import numpy as np
import pyarrow as pa

from .errors import ConfigError, QueryError
from .wire import KST, TS_TYPE, VENUES, Venue

#: Closures a ``holidays`` release may lack (one-off election days, temporary holidays).
#: Union with the package's list: adding a date here is always safe.
EXTRA_CLOSED: dict[date, str] = {
    date(2024, 4, 10): "National Assembly election",
    date(2024, 10, 1): "Armed Forces Day (temporary holiday)",
    date(2025, 1, 27): "Temporary holiday (Lunar New Year bridge)",
    date(2025, 6, 3): "Presidential election",
    date(2026, 6, 3): "Local elections",
    date(2026, 7, 17): "Constitution Day (restored as a holiday from 2026)",
}

#: Days the package lists as closed although KRX traded (none known; kept for quick fixes).
EXTRA_OPEN: frozenset[date] = frozenset()

FIRST_YEAR = 1990



SessionKind = Literal["pre", "auction", "continuous", "closing_auction", "post", "single_price", "after"]
SESSION_KINDS: tuple[SessionKind, ...] = get_args(SessionKind)

DayType = Literal["regular", "first_trading_day", "exam_day"]
SPECIAL_DAYS: tuple[DayType, ...] = ("first_trading_day", "exam_day")

#: Kinds whose matches are stamped after the scheduled end (random end, extensions).
_LATE_MATCH_KINDS = frozenset({"closing_auction", "single_price"})
_TIME_TEXT = re.compile(r"\d\d:\d\d(:\d\d)?")
_DAY = timedelta(days=1)
SESSIONS_FILE = "sessions.toml"


# --- trading dates -----------------------------------------------------------------------
#
# The trading date of a tick is the KST calendar date of its ``ts``, decided here and nowhere else
# (hot partitions, the lake's trade_date and dedup windows, candles, verify, recovery). Validation
# keeps every ``ts`` in [core.wire.TS_MIN, TS_MAX), where Asia/Seoul is always UTC+9, so the date is
# plain arithmetic — the same ``+ 9 h`` the stores' SQL uses (lake write.sql computes trade_date so).

_US_PER_DAY = 86_400_000_000
_KST_OFFSET_US = 9 * 3_600_000_000
_EPOCH = date(1970, 1, 1)


def trading_date(ts: datetime) -> date:
    """The trading date of an instant: its date at UTC+9."""
    if ts.tzinfo is None:
        raise QueryError(f"trading_date needs a timezone-aware instant, got {ts.isoformat()}")
    return ts.astimezone(KST).date()


def trading_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a trading date: its 00:00 and the next day's 00:00 at UTC+9."""
    start = datetime(day.year, day.month, day.day, tzinfo=KST)
    return start, start + _DAY


def trading_dates(ts: pa.Array | pa.ChunkedArray) -> set[date]:
    """The distinct trading dates of a ``ts`` column, on the array (no per-row objects)."""
    if len(ts) == 0:
        return set()
    micros = np.asarray(ts.cast(TS_TYPE).cast(pa.int64()), dtype=np.int64)
    return {_EPOCH + timedelta(days=int(n)) for n in np.unique((micros + _KST_OFFSET_US) // _US_PER_DAY)}


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    listed = set(holidays.financial_holidays("XKRX", years=year))
    listed |= {d for d in EXTRA_CLOSED if d.year == year}
    return frozenset(listed - EXTRA_OPEN)


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(KST).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise QueryError(f"not a date: {value!r} (want YYYY-MM-DD)") from None


def is_trading_day(day: date | datetime | str) -> bool:
    """True when KRX trades on this KST date (weekday, not a holiday)."""
    d = _as_date(day)
    if d.year < FIRST_YEAR:
        raise QueryError(f"{d} is before {FIRST_YEAR}; the calendar does not reach that far back")
    return d.weekday() < 5 and d not in _holidays(d.year)


def trading_days(start: date | str, end: date | str) -> list[date]:
    """Trading dates with start <= d <= end (both inclusive, as on the command line)."""
    return list(iter_trading_days(start, end))


def iter_trading_days(start: date | str, end: date | str) -> Iterator[date]:
    d, last = _as_date(start), _as_date(end)
    while d <= last:
        if is_trading_day(d):
            yield d
        d += timedelta(days=1)


def next_trading_day(day: date | str) -> date:
    """The first trading date strictly after ``day``."""
    d = _as_date(day) + timedelta(days=1)
    while not is_trading_day(d):
        d += timedelta(days=1)
    return d


def previous_trading_day(day: date | str) -> date:
    """The last trading date strictly before ``day``."""
    d = _as_date(day) - timedelta(days=1)
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


def first_trading_day_of_year(year: int) -> date:
    return next_trading_day(date(year - 1, 12, 31))


# --- the session table -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """One session of a rule, as offsets from KST midnight (no date yet)."""

    name: str
    kind: SessionKind
    start: timedelta
    end: timedelta
    overlaps: frozenset[str]
    match_grace: timedelta

    @property
    def trades(self) -> tuple[timedelta, timedelta] | None:
        """[from, until) in which this session's trades are stamped; None for order entry only."""
        if self.kind == "auction":
            return None
        if self.kind == "closing_auction":
            return self.end, self.end + self.match_grace
        return self.start, self.end + self.match_grace


@dataclass(frozen=True, slots=True)
class DayPlan:
    """A venue's sessions on one kind of day under one rule, ordered by start."""

    sessions: tuple[SessionSpec, ...]
    unconfirmed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SessionRule:
    """One dated rule of one venue: its regular day and its special days, already resolved."""

    venue: Venue
    name: str
    effective_from: date
    effective_to: date | None  # inclusive; None = until the venue's next rule
    plans: Mapping[DayType, DayPlan]


@dataclass(frozen=True, slots=True)
class SessionTable:
    """The parsed, checked contents of sessions.toml."""

    version: int
    exam_days: frozenset[date]
    rules: tuple[SessionRule, ...]  # by venue, then effective_from

    def rule(self, day: date, venue: Venue) -> SessionRule | None:
        """The venue's rule in force on ``day``, or None when the venue does not trade then."""
        in_force = None
        for r in self.rules:
            if r.venue == venue and r.effective_from <= day:
                in_force = r
        if in_force is None or (in_force.effective_to is not None and day > in_force.effective_to):
            return None
        return in_force


def _fail(where: str, problem: str) -> ConfigError:
    return ConfigError(f"{SESSIONS_FILE}: {where}: {problem}; fix that row (format described at the top of the file)")


def _keys(row: Mapping[str, Any], where: str, required: set[str], optional: set[str]) -> None:
    missing = required - row.keys()
    unknown = row.keys() - required - optional
    if missing:
        raise _fail(where, f"missing {', '.join(sorted(missing))}")
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")


def _offset(text: Any, where: str) -> timedelta:
    if not isinstance(text, str) or not _TIME_TEXT.fullmatch(text):
        raise _fail(where, f"time {text!r} is not \"HH:MM\" or \"HH:MM:SS\"")
    try:
        t = time.fromisoformat(text)
    except ValueError:
        raise _fail(where, f"time {text!r} does not exist") from None
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)


def _session(row: Any, where: str) -> SessionSpec:
    if not isinstance(row, dict):
        raise _fail(where, "a session must be a table like { name = ..., kind = ..., start = ..., end = ... }")
    _keys(row, where, {"name", "kind", "start", "end"}, {"overlaps", "match_grace_minutes"})
    if not isinstance(row["name"], str) or not row["name"]:
        raise _fail(where, f"name {row['name']!r} must be a non-empty string")
    where = f"{where} '{row['name']}'"
    if row["kind"] not in SESSION_KINDS:
        raise _fail(where, f"kind {row['kind']!r} is not one of {', '.join(SESSION_KINDS)}")
    grace = row.get("match_grace_minutes", 0)
    if grace and row["kind"] not in _LATE_MATCH_KINDS:
        raise _fail(where, f"match_grace_minutes only applies to {' and '.join(sorted(_LATE_MATCH_KINDS))} sessions")
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        raise _fail(where, f"match_grace_minutes {grace!r} must be a whole number of minutes >= 0")
    overlaps = row.get("overlaps", [])
    if not isinstance(overlaps, list) or not all(isinstance(n, str) for n in overlaps):
        raise _fail(where, "overlaps must be a list of session names")
    return SessionSpec(
        row["name"], row["kind"], _offset(row["start"], where), _offset(row["end"], where),
        frozenset(overlaps), timedelta(minutes=grace),
    )


def _note(row: Mapping[str, Any], where: str) -> tuple[str, ...]:
    note = row.get("unconfirmed", "")
    if not isinstance(note, str):
        raise _fail(where, "unconfirmed must be a sentence in quotes")
    return (note,) if note else ()


def _patched(regular: DayPlan, patch: Any, where: str) -> DayPlan:
    """A special day's sessions: shift everything, then set the moved ones, then drop."""
    if not isinstance(patch, dict):
        raise _fail(where, "a special day must be a table")
    _keys(patch, where, set(), {"shift_minutes", "move", "drop", "unconfirmed"})
    shift = patch.get("shift_minutes", 0)
    move, drop = patch.get("move", {}), patch.get("drop", [])
    if not isinstance(shift, int) or isinstance(shift, bool):
        raise _fail(where, f"shift_minutes {shift!r} must be a whole number")
    if not isinstance(move, dict) or not isinstance(drop, list):
        raise _fail(where, "move must be a table of name = [start, end], drop a list of names")
    for name in [*move, *drop]:
        if name not in {s.name for s in regular.sessions}:
            raise _fail(where, f"no session named {name!r} in this rule")
    if set(move) & set(drop):
        raise _fail(where, f"{', '.join(sorted(set(move) & set(drop)))} both moved and dropped")
    out = []
    for s in regular.sessions:
        if s.name in drop:
            continue
        start, end = s.start + timedelta(minutes=shift), s.end + timedelta(minutes=shift)
        if s.name in move:
            times = move[s.name]
            if not isinstance(times, list) or len(times) != 2:
                raise _fail(where, f"move {s.name} = {times!r}: want [\"HH:MM\", \"HH:MM\"]")
            start, end = _offset(times[0], f"{where} {s.name}"), _offset(times[1], f"{where} {s.name}")
        out.append(SessionSpec(s.name, s.kind, start, end, s.overlaps, s.match_grace))
    return DayPlan(tuple(out), regular.unconfirmed + _note(patch, where))


def _check_plan(plan: DayPlan, venue: Venue, where: str) -> DayPlan:
    """Every window inside the day, start < end, overlaps declared, trade windows disjoint."""
    sessions = tuple(sorted(plan.sessions, key=lambda s: (s.start, s.end)))
    if not sessions:
        raise _fail(where, "no sessions")
    names = [s.name for s in sessions]
    if len(set(names)) != len(names):
        raise _fail(where, f"session names repeat: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
    for s in sessions:
        if not timedelta(0) <= s.start < s.end:
            raise _fail(f"{where} '{s.name}'", f"start {s.start} must be before end {s.end}")
        if (s.trades[1] if s.trades else s.end) > _DAY:
            raise _fail(f"{where} '{s.name}'", "runs past midnight; a session ends on its own date")
    for i, a in enumerate(sessions):
        for b in sessions[i + 1:]:
            declared = b.name in a.overlaps or a.name in b.overlaps
            if a.start < b.end and b.start < a.end and not declared:
                raise _fail(where, f"sessions '{a.name}' and '{b.name}' overlap; declare it with overlaps = [...] if intended")
            if a.trades and b.trades and a.trades[0] < b.trades[1] and b.trades[0] < a.trades[1]:
                raise _fail(where, f"trades of '{a.name}' and '{b.name}' would be stamped in the same instant")
    if venue == "KRX":  # session(day) reads the regular session from these two
        for kind in ("continuous", "closing_auction"):
            if sum(s.kind == kind for s in sessions) != 1:
                raise _fail(where, f"KRX needs exactly one {kind} session every trading day")
    return DayPlan(sessions, plan.unconfirmed)


def _rule(row: Any, index: int) -> SessionRule:
    where = f"rule #{index + 1}"
    if not isinstance(row, dict):
        raise _fail(where, "each [[rule]] must be a table")
    _keys(row, where, {"venue", "name", "effective_from", "sessions"},
          {"effective_to", "unconfirmed", *SPECIAL_DAYS})
    where = f"rule '{row['name']}'"
    venue = row["venue"]
    if venue not in VENUES:
        raise _fail(where, f"venue {venue!r} is not one of {', '.join(VENUES)} (a new venue is added to calendar.VENUES first)")
    start, stop = row["effective_from"], row.get("effective_to")
    for value in (start, stop):
        if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
            raise _fail(where, f"{value!r} is not a date (write effective_from = 2026-06-29, no quotes)")
    if stop is not None and stop < start:
        raise _fail(where, f"effective_to {stop} is before effective_from {start}")
    if not isinstance(row["sessions"], list):
        raise _fail(where, "sessions must be a list of session tables")
    regular = DayPlan(tuple(_session(s, f"{where} session") for s in row["sessions"]), _note(row, where))
    names = {s.name for s in regular.sessions}
    for s in regular.sessions:
        if not s.overlaps <= names:
            raise _fail(f"{where} '{s.name}'", f"overlaps names unknown session(s) {', '.join(sorted(s.overlaps - names))}")
    plans: dict[DayType, DayPlan] = {"regular": _check_plan(regular, venue, where)}
    for special in SPECIAL_DAYS:
        patched = _patched(regular, row.get(special, {}), f"{where} {special}")
        plans[special] = _check_plan(patched, venue, f"{where} {special}")
    return SessionRule(venue, row["name"], start, stop, plans)


def _check_dates(rules: list[SessionRule]) -> None:
    """Rules of one venue follow each other without overlap; KRX covers every date."""
    for venue in VENUES:
        mine = [r for r in rules if r.venue == venue]
        for earlier, later in itertools.pairwise(mine):
            if later.effective_from == earlier.effective_from:
                raise _fail(f"rule '{later.name}'", f"starts the same day as '{earlier.name}'")
            if earlier.effective_to is not None and earlier.effective_to >= later.effective_from:
                raise _fail(f"rule '{earlier.name}'", f"effective_to {earlier.effective_to} runs into '{later.name}'")
        if venue == "KRX":
            if not mine or mine[0].effective_from > date(FIRST_YEAR, 1, 1):
                raise _fail("KRX rules", f"the first must start by {FIRST_YEAR}-01-01 (every KRX trading day needs sessions)")
            for r, after in zip(mine, [*mine[1:], None]):
                if r.effective_to is not None and (after is None or after.effective_from != r.effective_to + _DAY):
                    raise _fail(f"rule '{r.name}'", "KRX rules may leave no gap: drop effective_to")


def parse_session_table(text: str) -> SessionTable:
    """Parse and check a session table; any problem raises ConfigError naming the row."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{SESSIONS_FILE} is not valid TOML ({exc}); fix the file") from None
    _keys(raw, "top level", {"version", "exam_days", "rule"}, set())
    if not isinstance(raw["version"], int) or isinstance(raw["version"], bool):
        raise _fail("version", f"{raw['version']!r} must be a whole number, bumped on every edit")
    exam_days = raw["exam_days"]
    if not isinstance(exam_days, list) or any(isinstance(d, datetime) or not isinstance(d, date) for d in exam_days):
        raise _fail("exam_days", "must be a list of dates like 2026-11-19 (no quotes)")
    if not isinstance(raw["rule"], list):
        raise _fail("rule", "write each rule as a [[rule]] table")
    rules = sorted((_rule(r, i) for i, r in enumerate(raw["rule"])), key=lambda r: (r.venue, r.effective_from))
    _check_dates(rules)
    return SessionTable(raw["version"], frozenset(exam_days), tuple(rules))


@lru_cache(maxsize=1)
def session_table() -> SessionTable:
    """The session table shipped with tickvault (read once)."""
    return parse_session_table(resources.files(__package__).joinpath(SESSIONS_FILE).read_text("utf-8"))


# --- sessions of a date --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """One session of one venue on one date, as aware KST instants: [start, end)."""

    venue: Venue
    name: str
    kind: SessionKind
    start: datetime
    end: datetime
    #: [trades_start, trades_end): when this session's trades are stamped; None = orders only
    trades_start: datetime | None
    trades_end: datetime | None

    def has_trade_time(self, ts: datetime) -> bool:
        """True when a trade of this session may carry the instant ``ts``."""
        return self.trades_start is not None and self.trades_end is not None and self.trades_start <= ts < self.trades_end


def _venue(venue: str) -> Venue:
    name = venue.upper() if isinstance(venue, str) else venue
    if name not in VENUES:
        raise QueryError(f"unknown venue {venue!r}: use one of {', '.join(VENUES)}")
    return name  # checked against VENUES above


def day_type(day: date | datetime | str) -> DayType:
    """Which of the table's day kinds ``day`` is: a special day, or regular."""
    d = _as_date(day)
    if d in session_table().exam_days:
        return "exam_day"
    if d == first_trading_day_of_year(d.year):
        return "first_trading_day"
    return "regular"


@lru_cache(maxsize=4096)
def _windows(day: date, venue: Venue) -> tuple[SessionWindow, ...]:
    rule = session_table().rule(day, venue) if is_trading_day(day) else None
    if rule is None:
        return ()
    midnight = datetime.combine(day, time(0), tzinfo=KST)
    out = []
    for s in rule.plans[day_type(day)].sessions:
        trades = s.trades
        out.append(SessionWindow(
            venue, s.name, s.kind, midnight + s.start, midnight + s.end,
            midnight + trades[0] if trades else None, midnight + trades[1] if trades else None,
        ))
    return tuple(out)


def _require(day: date | datetime | str, venue: str) -> tuple[SessionWindow, ...]:
    d, v = _as_date(day), _venue(venue)
    windows = _windows(d, v)
    if not windows:
        why = "weekend or holiday" if not is_trading_day(d) else f"{v} has no session rule in force then"
        raise QueryError(f"{d} is not a {v} trading day ({why}); pick a date on which {v} trades")
    return windows


def venue_active(day: date | datetime | str, venue: Venue) -> bool:
    """True when ``venue`` trades on ``day`` (a trading date within one of its rules)."""
    return bool(_windows(_as_date(day), _venue(venue)))


def sessions(day: date | datetime | str, venue: Venue) -> list[SessionWindow]:
    """The venue's sessions on ``day``, ordered by start; empty when it does not trade then."""
    return list(_windows(_as_date(day), _venue(venue)))


def trading_hours(day: date | datetime | str, venue: Venue) -> tuple[datetime, datetime]:
    """First session start and last session end of the venue's day (order-entry windows included)."""
    windows = _require(day, venue)
    return windows[0].start, max(w.end for w in windows)


def venue_close(day: date | datetime | str, venue: Venue) -> datetime:
    """The instant after which no trade of the venue carries this date: recovery runs after it.

    That is the last session's end, or later when that session matches at its end (the
    after-hours single-price session's last match may be stamped after 18:00).
    """
    return max(w.trades_end or w.end for w in _require(day, venue))


def collect_window(day: date | datetime | str) -> tuple[datetime, datetime]:
    """From the earliest session start to the latest venue close across the venues trading ``day``."""
    d = _as_date(day)
    active = [v for v in VENUES if _windows(d, v)]
    if not active:
        raise QueryError(f"{d} is not a trading day (weekend or holiday); no venue trades then")
    return min(_windows(d, v)[0].start for v in active), max(venue_close(d, v) for v in active)


def in_session(ts: datetime, venue: Venue) -> SessionWindow | None:
    """The session of ``venue`` a trade stamped ``ts`` belongs to; None flags it as outside all."""
    if ts.tzinfo is None:
        raise QueryError(f"in_session needs an aware datetime, got naive {ts.isoformat()}; attach the time zone")
    v = _venue(venue)
    for window in _windows(ts.astimezone(KST).date(), v):
        if window.has_trade_time(ts):
            return window
    return None


def unconfirmed(day: date | datetime | str, venue: Venue) -> tuple[str, ...]:
    """What the session table could not confirm for the venue's rule on ``day`` (empty: all firm)."""
    d, v = _as_date(day), _venue(venue)
    rule = session_table().rule(d, v)
    return rule.plans[day_type(d)].unconfirmed if rule else ()


# --- the KRX regular session ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """One trading date's KRX regular session as aware instants (KST)."""

    day: date
    open: datetime  # continuous trading starts (the opening auction's match)
    close: datetime  # scheduled close = closing-auction match time
    #: Exclusive end of the regular session incl. a (possibly extended) closing auction.
    regular_end: datetime
    #: Opens later than the rule's regular day (first trading day, exam day).
    late_open: bool


def session(day: date | str) -> Session:
    """KRX's regular session: continuous start to closing-auction end. QueryError on a non-trading date."""
    d = _as_date(day)
    if not is_trading_day(d):
        raise QueryError(f"{d} is not a KRX trading day (weekend or holiday)")
    windows = {w.kind: w for w in _windows(d, "KRX") if w.kind in ("continuous", "closing_auction")}
    opening, closing = windows["continuous"], windows["closing_auction"]
    rule = session_table().rule(d, "KRX")
    assert rule is not None  # the table check makes KRX rules cover every date
    usual = next(s.start for s in rule.plans["regular"].sessions if s.kind == "continuous")
    late = opening.start > datetime.combine(d, time(0), tzinfo=KST) + usual
    return Session(d, opening.start, closing.end, closing.trades_end, late)  # type: ignore[arg-type]
