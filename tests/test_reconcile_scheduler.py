"""The sync scheduler: periodic reconcile of today up to the settle margin, one full reconcile
after the configured final time, trims on their own period; failures never escape."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from tickvault.core.config import Settings
from tickvault.core.wire import KST
from tickvault.services.sync import state
from tickvault.services.sync.scheduler import SyncScheduler, parse_kst_time


class Recorder(SyncScheduler):
    def __init__(self, settings: Settings, now: datetime) -> None:
        super().__init__(settings, clock=lambda: self.now)
        self.now = now
        self.calls: list[tuple[str, date | None, datetime | None]] = []

    def trim_once(self) -> None:
        self.calls.append(("trim", None, None))

    def reconcile_once(self, day: date, until: datetime | None) -> None:
        self.calls.append(("reconcile", day, until))


def test_schedule_periodic_then_final_once(settings: Settings) -> None:
    s = settings.model_copy(update={"reconcile_interval_s": 10, "trim_interval_s": 1, "reconcile_settle_s": 120})
    noon = datetime(2026, 11, 20, 12, 0, tzinfo=KST)
    sched = Recorder(s, noon)
    sched._next_reconcile = 0.0  # due now
    sched.run_due()
    assert sched.calls == [("trim", None, None), ("reconcile", noon.date(), noon - timedelta(seconds=120))]
    sched.calls.clear()
    sched.run_due()  # nothing due yet (intervals not elapsed)
    assert sched.calls == []
    sched.now = datetime(2026, 11, 20, 18, 15, tzinfo=KST)
    sched.run_due()
    sched.run_due()
    assert sched.calls == [("reconcile", date(2026, 11, 20), None)]  # the final one, once


def test_failures_are_logged_not_raised(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    broken = settings.model_copy(update={"pg_url": "postgresql://postgres@127.0.0.1:1/none", "redis_url": "redis://127.0.0.1:1/0"})
    sched = SyncScheduler(broken)
    sched.trim_once()
    sched.reconcile_once(datetime.now(KST).date(), None)  # stores unreachable: reported, not raised
    assert state.snapshot()["reconcile_consistent"] == 0.0
    assert "trim failed" in caplog.text and "cannot read the hot store" in caplog.text


def test_final_time_must_be_hh_mm() -> None:
    assert parse_kst_time("18:10").hour == 18
    with pytest.raises(ValueError, match="HH:MM"):
        parse_kst_time("6pm")
