"""The daily recovery job that `tickvault run` schedules at ``recovery_time`` (default 16:10 KST).

16:10 leaves room for the closing auction's random extension (up to 15:35) and the
post-market closing-price session (15:40–16:00) before the broker is asked. Re-running is
always safe (idempotent upserts; a second run only re-reads minute bars), so a process
started late simply runs once for the current day.
"""

from __future__ import annotations

import logging
from datetime import date

from ...core.config import Settings
from .planner import recover
from .report import RecoveryReport

log = logging.getLogger(__name__)


def has_credentials(settings: Settings, broker: str) -> bool:
    if broker == "kis":
        return settings.kis_appkey is not None and settings.kis_appsecret is not None
    return settings.kiwoom_appkey is not None and settings.kiwoom_secretkey is not None


def recover_day(settings: Settings, day: date) -> RecoveryReport | None:
    """The scheduled job (called by `tickvault run`): recover ``day`` with the configured broker.

    Without credentials for that broker it logs why and returns None instead of failing.
    """
    broker = settings.recovery_broker
    if not has_credentials(settings, broker):
        variables = "TICKVAULT_KIS_APPKEY/TICKVAULT_KIS_APPSECRET" if broker == "kis" else "TICKVAULT_KIWOOM_APPKEY/TICKVAULT_KIWOOM_SECRETKEY"
        log.warning("daily recovery of %s skipped: no %s credentials (set %s)", day, broker, variables)
        return None
    report = recover(settings, day, broker=broker)
    log.info("daily recovery of %s via %s: %s", day, broker, "complete" if report.complete else "NOT complete: " + "; ".join(report.reasons()))
    return report
