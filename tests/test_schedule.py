"""The one scheduler, driven by a test clock (no sleeping, no servers): periodic jobs, daily jobs
on trading days with catch-up and bounded retries, lanes, and failures that never escape."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from tickvault.core.config import Settings
from tickvault.core.wire import KST
from tickvault.ops.run import scheduled_jobs
from tickvault.ops.schedule import Daily, Every, Scheduler, describe


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


THURSDAY = datetime(2026, 11, 26, 12, 0, tzinfo=KST)  # a KRX trading day
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=KST)


def test_every_job_runs_at_its_period_and_first_after_its_delay() -> None:
    calls: list[tuple[str, datetime]] = []
    clock = Clock(THURSDAY)
    sched = Scheduler([
        Every("trim", 60, lambda now: calls.append(("trim", now))),
        Every("reconcile", 600, lambda now: calls.append(("reconcile", now)), first_after_s=60),
    ], clock=clock)
    assert sched.run_due() == ["trim"]
    assert sched.run_due() == []  # nothing due until the clock moves
    clock.advance(seconds=59)
    assert sched.run_due() == []
    clock.advance(seconds=1)
    assert sched.run_due() == ["trim", "reconcile"]
    clock.advance(seconds=600)
    assert sched.run_due() == ["trim", "reconcile"]
    assert [name for name, _ in calls] == ["trim", "trim", "reconcile", "trim", "reconcile"]
    assert calls[-1][1] == THURSDAY + timedelta(seconds=660)  # the job is told the scheduled instant


def test_daily_job_runs_once_per_trading_day_after_its_time_and_catches_up() -> None:
    days: list[date] = []
    clock = Clock(THURSDAY.replace(hour=16, minute=9))
    sched = Scheduler([Daily("recovery", time(16, 10), days.append)], clock=clock)
    assert sched.run_due() == []
    clock.advance(minutes=1)
    assert sched.run_due() == ["recovery"]
    clock.advance(hours=4)
    assert sched.run_due() == []  # done for today
    clock.now = SATURDAY.replace(hour=17)
    assert sched.run_due() == []  # not a trading day
    clock.now = datetime(2026, 11, 30, 23, 0, tzinfo=KST)  # Monday, started late: runs at once
    assert sched.run_due() == ["recovery"]
    assert days == [date(2026, 11, 26), date(2026, 11, 30)]


def test_every_day_job_runs_on_holidays_too() -> None:
    clock = Clock(SATURDAY.replace(hour=18, minute=30))
    sched = Scheduler([Daily("reconcile-final", time(18, 10), lambda day: None, every_day=True)], clock=clock)
    assert sched.run_due() == ["reconcile-final"]


def test_failed_daily_job_is_retried_a_bounded_number_of_times() -> None:
    calls: list[date] = []

    def broker_down(day: date) -> None:
        calls.append(day)
        raise ConnectionError("broker down")

    recorded: list[tuple[str, bool]] = []
    clock = Clock(THURSDAY.replace(hour=16, minute=30))
    job = Daily("recovery", time(16, 10), broker_down, attempts=2, retry_after_s=1800)
    sched = Scheduler([job], clock=clock, record=lambda name, ok, seconds, results: recorded.append((name, ok)))
    assert sched.run_due() == ["recovery"]  # the exception is recorded, not raised
    clock.advance(minutes=29)
    assert sched.run_due() == []  # waits retry_after_s
    clock.advance(minutes=1)
    assert sched.run_due() == ["recovery"]
    clock.advance(hours=2)
    assert sched.run_due() == []  # out of attempts for today
    assert len(calls) == 2 and recorded == [("recovery", False), ("recovery", False)]
    state = sched.status()["recovery"]
    assert state.failures == 2 and state.last_ok is False and "broker down" in state.last_error

    clock.now = datetime(2026, 11, 27, 16, 10, tzinfo=KST)  # the next trading day starts afresh
    assert sched.run_due() == ["recovery"]


def test_skipped_daily_job_is_not_retried_and_numbers_reach_the_recorder() -> None:
    recorded: list[tuple[str, bool, dict[str, float]]] = []
    clock = Clock(THURSDAY.replace(hour=17))
    sched = Scheduler([
        Daily("recovery", time(16, 10), lambda day: {"ok": 0.0, "skipped": 1.0}, retry_after_s=0),
        Daily("compact", time(16, 40), lambda day: {"files_before": 4.0, "files_after": 1.0}),
    ], clock=clock, record=lambda name, ok, seconds, results: recorded.append((name, ok, results)))
    assert sched.run_due() == ["recovery", "compact"]
    assert sched.run_due() == []  # a skip (no credentials) will not fix itself today
    assert recorded == [("recovery", False, {"skipped": 1.0}), ("compact", True, {"files_before": 4.0, "files_after": 1.0})]
    assert sched.status()["compact"].last_run == clock.now and sched.status()["compact"].runs == 1


def test_jobs_of_one_lane_never_run_together() -> None:
    clock = Clock(THURSDAY.replace(hour=18, minute=30))
    sched = Scheduler([
        Every("reconcile", 600, lambda now: None, lane="reconcile"),
        Daily("reconcile-final", time(18, 10), lambda day: None, every_day=True, lane="reconcile"),
        Every("trim", 60, lambda now: None),
    ], clock=clock)
    assert sched.run_due() == ["reconcile", "trim"]  # the final waits for its lane to be free
    assert sched.run_due() == ["reconcile-final"]


def test_a_clock_that_goes_back_does_not_stall_a_periodic_job() -> None:
    clock = Clock(THURSDAY)
    sched = Scheduler([Every("trim", 60, lambda now: None)], clock=clock)
    assert sched.run_due() == ["trim"]
    clock.advance(hours=-3)  # NTP steps back: the job is rescheduled from now, not three hours on
    assert sched.run_due() == ["trim"]
    clock.advance(seconds=59)
    assert sched.run_due() == []
    clock.advance(seconds=1)
    assert sched.run_due() == ["trim"]


def test_run_and_archive_schedule_the_jobs_of_their_parts() -> None:
    settings = Settings(trim_interval_s=30, reconcile_interval_s=300, recovery_margin_minutes=20, compact_time="20:50",
                        reconcile_final_time="18:15")
    everything = [describe(job) for job in scheduled_jobs(settings, ("hot", "cold", "reconcile", "recovery", "compact"))]
    assert everything == [
        "hot-maintain every 3600s",
        "trim every 30s",
        "reconcile every 300s",
        "reconcile-final at 18:15 KST on every day",
        "recovery-krx at KRX close + 20 min on trading days",
        "recovery-nxt at NXT close + 20 min on trading days",
        "compact at 20:50 KST on trading days",
    ]
    assert [job.name for job in scheduled_jobs(settings, ("hot", "cold"))] == ["hot-maintain"]  # archive hot|all --no-sync
    assert scheduled_jobs(settings, ("cold", "metrics", "endpoint")) == []


def test_job_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Scheduler([Every("trim", 1, lambda now: None), Every("trim", 2, lambda now: None)])


def test_failing_trim_and_reconcile_are_recorded_not_raised(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    from tickvault.services.sync import state

    broken = Settings(pg_url="postgresql://postgres@127.0.0.1:1/none", redis_url="redis://127.0.0.1:1/0",
                      lake_dir=tmp_path / "lake", reconcile_interval_s=10, trim_interval_s=10)
    recorded: list[tuple[str, bool]] = []
    clock = Clock(THURSDAY)
    jobs = [job for job in scheduled_jobs(broken, ("reconcile",)) if job.name in ("trim", "reconcile")]
    sched = Scheduler(jobs, clock=clock, record=lambda name, ok, seconds, results: recorded.append((name, ok)))
    assert sched.run_due() == ["trim"]
    clock.advance(seconds=10)
    assert sched.run_due() == ["trim", "reconcile"]  # stores unreachable: reported, not raised
    assert recorded[:2] == [("trim", False), ("trim", False)]
    assert state.snapshot()["reconcile_consistent"] == 0.0
    assert "job trim failed" in caplog.text and "cannot read the hot store" in caplog.text
