"""Background sync inside `tickvault run` / `tickvault archive`: trim often, reconcile today
every ``reconcile_interval_s``, and run one full reconcile of the day after the close.

Start it with ``SyncScheduler(settings).start()`` and stop it with ``.stop()``. Every job
catches its own failures (a store being down is logged and retried next period): the
scheduler must never take an archiver down with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from ...core.config import Settings
from ...core.wire import KST
from . import state

log = logging.getLogger(__name__)
UTC = UTC


def parse_kst_time(text: str) -> dtime:
    try:
        hours, minutes = (int(p) for p in text.split(":"))
        return dtime(hours, minutes)
    except ValueError:
        raise ValueError(f"reconcile_final_time must be HH:MM (KST), got {text!r}") from None


class SyncScheduler:
    """Runs trim and reconcile on their schedules in one daemon thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        trim: bool = True,
        reconcile: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.do_trim = trim
        self.do_reconcile = reconcile
        self.final_time = parse_kst_time(settings.reconcile_final_time)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self._next_trim = 0.0
        self._next_reconcile = time.monotonic() + min(60.0, settings.reconcile_interval_s)
        self._final_done: date | None = None

    def start(self) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, name="tickvault-sync", daemon=True)
        self.thread.start()
        return self.thread

    def stop(self, timeout: float | None = 30.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def run(self) -> None:
        log.info(
            "sync scheduler started: trim every %ds, reconcile every %ds, final reconcile at %s KST",
            self.settings.trim_interval_s, self.settings.reconcile_interval_s, self.settings.reconcile_final_time,
        )
        while not self.stop_event.is_set():
            self.run_due()
            self.stop_event.wait(1.0)

    def run_due(self) -> None:
        """One pass: whatever job is due now (also called directly by tests)."""
        now_mono = time.monotonic()
        if self.do_trim and now_mono >= self._next_trim:
            self._next_trim = now_mono + self.settings.trim_interval_s
            self.trim_once()
        if not self.do_reconcile:
            return
        now = self.clock()
        today = now.astimezone(KST).date()
        final_at = datetime.combine(today, self.final_time, tzinfo=KST)
        if now >= final_at and self._final_done != today:
            self._final_done = today
            self.reconcile_once(today, until=None)
        elif now_mono >= self._next_reconcile:
            self._next_reconcile = now_mono + self.settings.reconcile_interval_s
            self.reconcile_once(today, until=now - timedelta(seconds=self.settings.reconcile_settle_s))

    def trim_once(self) -> None:
        from .trim import trim

        try:
            trim(self.settings)
        except Exception:
            log.exception("sync: stream trim failed; will retry in %ds", self.settings.trim_interval_s)

    def reconcile_once(self, day: date, until: datetime | None) -> None:
        from .reconcile import reconcile

        try:
            reconcile(self.settings, day, repair=True, until=until)  # records its outcome in sync.state
        except Exception:
            state.record_reconcile_failure()
            log.exception("sync: reconcile of %s failed; will retry in %ds", day, self.settings.reconcile_interval_s)


def start_scheduler(settings: Settings) -> SyncScheduler:
    """Convenience for `tickvault run` / `archive`: a started scheduler (call ``.stop()`` on exit)."""
    scheduler = SyncScheduler(settings)
    scheduler.start()
    return scheduler
