"""Which days the hot store holds in full: one function, checked against the retention rules of
both hot-store modes (PostgreSQL drops whole KST days, TimescaleDB drops UTC-aligned chunks)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.retention import hot_days
from tickvault.core.wire import KST

SETTINGS = Settings(tick_retention_days=3)


def test_window_at_an_instant() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=KST)  # Friday
    window = hot_days(SETTINGS, now)
    assert window.oldest_day == date(2026, 11, 24)  # retention reaches back into this day
    assert window.cutoff == datetime(2026, 11, 24, tzinfo=KST)
    assert window.full_from == datetime(2026, 11, 25, tzinfo=KST)
    assert window.first_day == date(2026, 11, 25)
    assert [window.holds(date(2026, 11, d)) for d in (23, 24, 25, 27)] == [False, False, True, True]
    assert [window.expired(date(2026, 11, d)) for d in (23, 24, 25)] == [True, False, False]


def test_first_full_day_is_a_trading_day() -> None:
    window = hot_days(SETTINGS, datetime(2026, 11, 30, 9, 0, tzinfo=KST))  # oldest day: Friday 11-27
    assert window.oldest_day == date(2026, 11, 27)
    assert window.first_day == date(2026, 11, 30)  # the weekend is skipped
    assert window.holds(date(2026, 11, 28))  # a held non-trading day simply has no ticks


def test_a_day_is_held_in_full_only_while_every_chunk_holding_it_is_kept() -> None:
    """TimescaleDB drops a one-day UTC chunk once its end is older than the retention; a KST day
    needs two of them (the UTC day before holds its 00:00-09:00). PostgreSQL drops a KST-day
    partition once the day ended that long ago. Every held day survives both rules."""
    retention = timedelta(days=SETTINGS.tick_retention_days)
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    for step in range(7 * 24 * 4):  # every 15 minutes over a week
        now = start + timedelta(minutes=15 * step)
        window = hot_days(SETTINGS, now)
        for offset in range(-6, 2):
            day = window.oldest_day + timedelta(days=offset)
            first, last = trading_day_bounds(day)
            utc_days = {first.astimezone(UTC).date(), (last - timedelta(microseconds=1)).astimezone(UTC).date()}
            chunks_end = [datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1) for d in utc_days]
            kept_by_timescaledb = all(end > now - retention for end in chunks_end)
            kept_by_postgres = last > now - retention
            if window.holds(day):
                assert kept_by_timescaledb and kept_by_postgres, (now, day)
            assert window.expired(day) == (not kept_by_postgres), (now, day)
