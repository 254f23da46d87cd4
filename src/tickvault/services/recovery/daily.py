"""The daily recovery jobs that `tickvault run` schedules, one per venue, each after that
venue's close (``core.calendar.venue_close``: KRX 18:10, or 20:00 from the 2026 extension;
NXT 20:00) plus ``recovery_margin_minutes`` (default 10).

A venue's trades are complete only once its last session has ended (and the brokers list
a venue's trades only for the current day), so KRX is recovered after its close and NXT
after 20:00. Re-running is always safe (idempotent upserts; a second run only re-reads
minute bars), so a process started late simply runs once for the current day.
"""

from __future__ import annotations

import logging
from datetime import date

from ...core.config import Settings
from ...core.wire import Venue
from .planner import recover
from .report import RecoveryReport

log = logging.getLogger(__name__)


def has_credentials(settings: Settings, broker: str) -> bool:
    if broker == "kis":
        return settings.kis_appkey is not None and settings.kis_appsecret is not None
    return settings.kiwoom_appkey is not None and settings.kiwoom_secretkey is not None


def recover_day(settings: Settings, day: date, venue: Venue = "KRX") -> RecoveryReport | None:
    """The scheduled job (called by `tickvault run`): recover one venue's ``day`` with the configured broker.

    Without credentials for that broker it logs why and returns None instead of failing.
    """
    broker = settings.recovery_broker
    if not has_credentials(settings, broker):
        variables = "TICKVAULT_KIS_APPKEY/TICKVAULT_KIS_APPSECRET" if broker == "kis" else "TICKVAULT_KIWOOM_APPKEY/TICKVAULT_KIWOOM_SECRETKEY"
        log.warning("daily %s recovery of %s skipped: no %s credentials (set %s)", venue, day, broker, variables)
        return None
    report = recover(settings, day, broker=broker, venue=venue)
    log.info("daily %s recovery of %s via %s: %s", venue, day, broker,
             "complete" if report.complete else "NOT complete: " + "; ".join(report.reasons()))
    return report
