"""KRX (XKRX) trading calendar: which KST dates trade, and when their sessions open and close.

Holidays come from the ``holidays`` package's ``financial_holidays("XKRX")``, which ships its
data in the wheel (no network) and was found more current than ``exchange_calendars``' XKRX
(it knows 2026-06-03 local election day and 2026-07-17 Constitution Day). Older ``holidays``
releases miss some one-off closures, so a small local table patches them; the tests pin the
2024–2026 facts so a package upgrade that disagrees fails loudly.

Session times are not in any package: KRX opens at 09:00 and closes at 15:30 (closing auction
15:20–15:30), except that the first trading day of the year opens one hour late (10:00, close
unchanged) and on the college entrance exam day (수능) the market opens and closes one hour late
(10:00–16:30). Exam dates are announced a year ahead; add the next one to ``EXAM_DAYS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from .wire import KST

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

#: College Scholastic Ability Test days: KRX opens 10:00 and closes 16:30.
EXAM_DAYS: frozenset[date] = frozenset(
    {
        date(2015, 11, 12),
        date(2016, 11, 17),
        date(2017, 11, 23),  # postponed a week after the Pohang earthquake
        date(2018, 11, 15),
        date(2019, 11, 14),
        date(2020, 12, 3),
        date(2021, 11, 18),
        date(2022, 11, 17),
        date(2023, 11, 16),
        date(2024, 11, 14),
        date(2025, 11, 13),
        date(2026, 11, 19),
    }
)

REGULAR_OPEN = time(9, 0)
REGULAR_CLOSE = time(15, 30)
LATE_SHIFT = timedelta(hours=1)
#: Trades stamped up to this long after the close still belong to the regular session: the
#: closing auction's single-price match happens at the close and KRX may extend it at random
#: (up to 5 minutes); the post-market closing-price session starts 10 minutes after the close.
CLOSE_AUCTION_GRACE = timedelta(minutes=10)
FIRST_YEAR = 1990


@dataclass(frozen=True, slots=True)
class Session:
    """One trading date's regular session as aware instants (KST)."""

    day: date
    open: datetime
    close: datetime  # scheduled close = closing-auction match time

    @property
    def regular_end(self) -> datetime:
        """Exclusive end of the regular session incl. a (possibly extended) closing auction."""
        return self.close + CLOSE_AUCTION_GRACE

    @property
    def late_open(self) -> bool:
        return self.open.time() != REGULAR_OPEN


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
        raise ValueError(f"not a date: {value!r} (want YYYY-MM-DD)") from None


def is_trading_day(day: date | datetime | str) -> bool:
    """True when KRX trades on this KST date (weekday, not a holiday)."""
    d = _as_date(day)
    if d.year < FIRST_YEAR:
        raise ValueError(f"{d} is before {FIRST_YEAR}; the calendar does not reach that far back")
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


def session(day: date | str) -> Session:
    """Open and close of a trading date. Raises ValueError for a non-trading date."""
    d = _as_date(day)
    if not is_trading_day(d):
        raise ValueError(f"{d} is not a KRX trading day (weekend or holiday)")
    open_at = datetime.combine(d, REGULAR_OPEN, tzinfo=KST)
    close_at = datetime.combine(d, REGULAR_CLOSE, tzinfo=KST)
    if d in EXAM_DAYS:
        open_at += LATE_SHIFT
        close_at += LATE_SHIFT
    elif d == first_trading_day_of_year(d.year):
        open_at += LATE_SHIFT
    return Session(d, open_at, close_at)
