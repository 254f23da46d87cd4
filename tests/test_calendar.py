"""KRX calendar facts for 2024–2026, pinned so a `holidays` upgrade that disagrees fails here."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from tickvault.core import calendar as krx
from tickvault.core.wire import KST

CLOSED = {
    2024: ["01-01", "02-09", "02-12", "03-01", "04-10", "05-01", "05-06", "05-15", "06-06", "08-15",
           "09-16", "09-17", "09-18", "10-01", "10-03", "10-09", "12-25", "12-31"],
    2025: ["01-01", "01-27", "01-28", "01-29", "01-30", "03-03", "05-01", "05-05", "05-06", "06-03",
           "06-06", "08-15", "10-03", "10-06", "10-07", "10-08", "10-09", "12-25", "12-31"],
    2026: ["01-01", "02-16", "02-17", "02-18", "03-02", "05-01", "05-05", "05-25", "06-03", "07-17",
           "08-17", "09-24", "09-25", "10-05", "10-09", "12-25", "12-31"],
}


@pytest.mark.parametrize("year", sorted(CLOSED))
def test_weekday_closures_match_the_published_krx_calendar(year: int) -> None:
    expected = {date.fromisoformat(f"{year}-{md}") for md in CLOSED[year]}
    d, closed = date(year, 1, 1), set()
    while d.year == year:
        if d.weekday() < 5 and not krx.is_trading_day(d):
            closed.add(d)
        d += timedelta(days=1)
    assert closed == expected


def test_days_exchange_calendars_gets_wrong() -> None:
    assert not krx.is_trading_day(date(2026, 6, 3))  # local elections
    assert not krx.is_trading_day(date(2026, 7, 17))  # Constitution Day, a holiday again from 2026


def test_weekends_never_trade() -> None:
    assert not krx.is_trading_day(date(2026, 11, 21))
    assert not krx.is_trading_day("2026-11-22")
    assert krx.is_trading_day(date(2026, 11, 20))


@pytest.mark.parametrize("day", [date(2024, 1, 2), date(2025, 1, 2), date(2026, 1, 2)])
def test_first_trading_day_of_the_year_opens_at_ten(day: date) -> None:
    assert krx.first_trading_day_of_year(day.year) == day
    s = krx.session(day)
    assert (s.open.astimezone(KST).time(), s.close.astimezone(KST).time()) == (time(10), time(15, 30))
    assert s.late_open


@pytest.mark.parametrize("day", [date(2024, 11, 14), date(2025, 11, 13), date(2026, 11, 19)])
def test_exam_day_opens_and_closes_an_hour_late(day: date) -> None:
    s = krx.session(day)
    assert (s.open.astimezone(KST).time(), s.close.astimezone(KST).time()) == (time(10), time(16, 30))
    assert s.regular_end == datetime.combine(day, time(16, 40), tzinfo=KST)


def test_normal_session() -> None:
    s = krx.session(date(2026, 11, 20))
    assert s.open == datetime(2026, 11, 20, 9, tzinfo=KST)
    assert s.close == datetime(2026, 11, 20, 15, 30, tzinfo=KST)
    assert s.regular_end == datetime(2026, 11, 20, 15, 40, tzinfo=KST)
    assert not s.late_open


def test_session_of_a_holiday_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a KRX trading day"):
        krx.session(date(2026, 7, 17))


def test_trading_days_and_neighbours() -> None:
    assert krx.trading_days("2025-12-29", "2026-01-05") == [
        date(2025, 12, 29), date(2025, 12, 30), date(2026, 1, 2), date(2026, 1, 5)
    ]
    assert krx.next_trading_day(date(2025, 12, 30)) == date(2026, 1, 2)
    assert krx.previous_trading_day(date(2026, 1, 2)) == date(2025, 12, 30)
    assert krx.previous_trading_day(date(2026, 7, 20)) == date(2026, 7, 16)
    assert len(krx.trading_days("2026-01-01", "2026-12-31")) == 365 - 104 - 17


def test_bad_date_text_says_what_to_write() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        krx.is_trading_day("26/01/02")
