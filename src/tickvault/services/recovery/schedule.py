"""When the daily recovery runs: ``recovery_time`` (default 16:10 KST) on KRX trading days.

16:10 leaves room for the closing auction's random extension (up to 15:35) and the
post-market closing-price session (15:40–16:00) before the broker is asked. Re-running is
always safe (idempotent upserts; a second run only re-reads minute bars), so a process
started late simply runs once for the current day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime

from ...core.config import Settings
from ...core.wire import KST
from .report import RecoveryReport

log = logging.getLogger(__name__)


def recovery_clock(settings: Settings) -> dtime:
    try:
        hours, minutes = (int(p) for p in settings.recovery_time.split(":"))
        return dtime(hours, minutes)
    except ValueError:
        raise ValueError(f"recovery_time must be HH:MM (KST), got {settings.recovery_time!r}") from None


def _trading_day_check() -> Callable[[date], bool]:
    try:
        from ...core.calendar import is_trading_day

        return is_trading_day
    except ImportError:  # pragma: no cover - the calendar module ships with tickvault
        return lambda day: day.weekday() < 5


def due_day(now: datetime, settings: Settings, last_day: date | None = None,
            is_trading_day: Callable[[date], bool] | None = None) -> date | None:
    """The KST trading day to recover at ``now`` (None: nothing due, or already done)."""
    check = is_trading_day or _trading_day_check()
    local = now.astimezone(KST)
    day = local.date()
    if day == last_day or not check(day) or local.time() < recovery_clock(settings):
        return None
    return day


def next_run(now: datetime, settings: Settings, is_trading_day: Callable[[date], bool] | None = None) -> datetime:
    """The next instant (KST) the daily recovery is due after ``now``."""
    check = is_trading_day or _trading_day_check()
    local = now.astimezone(KST)
    at = recovery_clock(settings)
    day = local.date()
    for _ in range(400):
        candidate = datetime.combine(day, at, tzinfo=KST)
        if candidate > local and check(day):
            return candidate
        day += timedelta(days=1)
    raise RuntimeError("no trading day within 400 days; check the calendar")


def has_credentials(settings: Settings, broker: str) -> bool:
    if broker == "kis":
        return settings.kis_appkey is not None and settings.kis_appsecret is not None
    return settings.kiwoom_appkey is not None and settings.kiwoom_secretkey is not None


def recover_day(settings: Settings, day: date) -> RecoveryReport | None:
    """The scheduled job (called by `tickvault run`): recover ``day`` with the configured broker.

    Without credentials for that broker it logs why and returns None instead of failing.
    """
    from .planner import recover

    broker = settings.recovery_broker
    if not has_credentials(settings, broker):
        variables = "TICKVAULT_KIS_APPKEY/TICKVAULT_KIS_APPSECRET" if broker == "kis" else "TICKVAULT_KIWOOM_APPKEY/TICKVAULT_KIWOOM_SECRETKEY"
        log.warning("daily recovery of %s skipped: no %s credentials (set %s)", day, broker, variables)
        return None
    report = recover(settings, day, broker=broker)
    log.info("daily recovery of %s via %s: %s", day, broker, "complete" if report.complete else "NOT complete: " + "; ".join(report.reasons()))
    return report
