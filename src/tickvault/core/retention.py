"""Which KST days the hot store holds in full: the one answer every reader of the hot store uses.

Retention drops ticks by age, ``tick_retention_days`` after they were stored. PostgreSQL mode
drops whole KST-day partitions once the day ended that long ago; TimescaleDB drops UTC-aligned
chunks by the same rule, and a KST day spans two of them (09:00 KST is midnight UTC), so the
morning of the oldest retained day may already be gone. That oldest day is therefore never
counted as held in full: the hot store holds in full every day after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .calendar import next_trading_day, trading_date, trading_day_bounds
from .config import Settings


@dataclass(frozen=True)
class HotWindow:
    """The hot store's retention at one instant."""

    oldest_day: date  # the oldest KST day retention still keeps, possibly only in part
    first_day: date  # the first KST trading day held in full (the next trading day after ``oldest_day``)
    cutoff: datetime  # start of ``oldest_day``: ticks before it are in days retention has dropped

    @property
    def full_from(self) -> datetime:
        """The first instant from which the hot store holds every tick (start of the day after ``oldest_day``)."""
        return trading_day_bounds(self.oldest_day)[1]

    def holds(self, day: date) -> bool:
        """True when ``day`` is held in full (a KST date after the oldest retained day)."""
        return day > self.oldest_day

    def expired(self, day: date) -> bool:
        """True when retention drops ``day`` whole (PostgreSQL mode drops its partition)."""
        return day < self.oldest_day


def hot_days(settings: Settings, now: datetime) -> HotWindow:
    """The hot store's retention window at ``now`` (an aware instant)."""
    oldest = trading_date(now - timedelta(days=settings.tick_retention_days))
    return HotWindow(oldest_day=oldest, first_day=next_trading_day(oldest), cutoff=trading_day_bounds(oldest)[0])
