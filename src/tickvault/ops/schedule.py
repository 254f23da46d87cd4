"""The one scheduler of recurring work: every-N-seconds jobs and daily jobs at a KST time.

`tickvault run` and `tickvault archive` hand it their jobs (trim, reconcile, the final
reconcile, recovery, compaction, hot maintenance); the job bodies live in their services.
Why one scheduler: one clock that tests can drive, one rule for catching up after a late
start, one retry policy, and one place that knows when each job last ran and how it went.

A job returns ``None`` or numbers for the metrics (``{"ok": 0.0}`` marks a failed run that
raised nothing, ``{"skipped": 1.0}`` a run that cannot succeed today, e.g. no broker
credentials). An exception is a failed run: logged, recorded, retried — never raised.
"""

from __future__ import annotations

import logging
import threading
import time as monotonic_clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from ..core.calendar import is_trading_day
from ..core.wire import KST

log = logging.getLogger(__name__)

Results = dict[str, float]
Clock = Callable[[], datetime]
Recorder = Callable[[str, bool, float, Results], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobState:
    """What `status` and the metrics report about a job."""

    last_run: datetime | None = None  # when the last run started
    last_ok: bool | None = None
    last_error: str | None = None
    runs: int = 0
    failures: int = 0
    running: bool = False


@dataclass
class Every:
    """``fn(now)`` every ``seconds``; the first run ``first_after_s`` after the start.

    A failed run is simply tried again next period."""

    name: str
    seconds: float
    fn: Callable[[datetime], Results | None]
    first_after_s: float = 0.0
    lane: str = ""  # jobs sharing a lane never run at the same time (default: the job's name)
    state: JobState = field(default_factory=JobState)
    _next: datetime | None = None

    def due(self, now: datetime) -> datetime | None:
        if self._next is None or self._next - now > timedelta(seconds=max(self.seconds, self.first_after_s)):
            self._next = now + timedelta(seconds=self.first_after_s)  # first look, or the clock went back
        return now if now >= self._next else None

    def finished(self, arg: datetime, ok: bool, results: Results, now: datetime) -> None:
        self._next = arg + timedelta(seconds=self.seconds)


@dataclass
class Daily:
    """``fn(day)`` once per KST day at ``at`` (KST), on trading days unless ``every_day``.

    ``at`` is a fixed time or a function of the date (e.g. a venue's close from the session
    table plus a margin) that returns None on dates the job does not run. A process started
    after ``at`` runs the day's job at once (catch-up). A failed run is tried again
    ``retry_after_s`` later, at most ``attempts`` times a day; a skipped run
    (``{"skipped": 1.0}``) is not retried: it will not fix itself today."""

    name: str
    at: time | Callable[[date], time | None]
    fn: Callable[[date], Results | None]
    every_day: bool = False
    attempts: int = 3
    retry_after_s: float = 1800.0
    lane: str = ""
    state: JobState = field(default_factory=JobState)
    done_day: date | None = None  # succeeded, skipped, or out of attempts
    _tries: dict[date, int] = field(default_factory=dict)
    _not_before: datetime | None = None

    def due(self, now: datetime) -> date | None:
        local = now.astimezone(KST)
        day = local.date()
        if day == self.done_day or (not self.every_day and not is_trading_day(day)):
            return None
        at = self.at(day) if callable(self.at) else self.at
        if at is None or local.time() < at:
            return None
        if self._not_before is not None and now < self._not_before:
            return None
        return day

    def finished(self, day: date, ok: bool, results: Results, now: datetime) -> None:
        tries = self._tries[day] = self._tries.get(day, 0) + 1
        if ok or results.get("skipped") or tries >= self.attempts:
            self.done_day = day
            self._tries.pop(day, None)
            self._not_before = None
            if not ok and not results.get("skipped"):
                log.error("%s of %s failed %d times; not tried again today", self.name, day, tries)
        else:
            self._not_before = now + timedelta(seconds=self.retry_after_s)
            log.warning("%s of %s: attempt %d of %d failed; next try at %s", self.name, day, tries, self.attempts,
                        self._not_before.astimezone(KST).strftime("%H:%M KST"))


Job = Every | Daily


class Scheduler:
    """Runs ``jobs`` when due. ``run()`` is the long-running loop (a supervised component):
    every due job runs in a thread of its own, so a slow recovery never delays a trim, and
    a job never overlaps itself. ``run_due()`` runs what is due now, in order, in the
    caller's thread (one-shot use and tests, with ``clock`` under the test's control).
    Jobs of one lane (e.g. today's and the final reconcile) wait for each other; when several
    are due at once, the earlier in ``jobs`` goes first."""

    def __init__(self, jobs: Sequence[Job], *, clock: Clock = utc_now, record: Recorder | None = None,
                 poll_s: float = 1.0) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {', '.join(names)}")
        self.jobs = list(jobs)
        self.clock = clock
        self.record = record
        self.poll_s = poll_s
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ one pass
    def due_jobs(self) -> list[tuple[Job, datetime | date]]:
        now = self.clock()
        with self._lock:
            busy = {lane(job) for job in self.jobs if job.state.running}
            due = []
            for job in self.jobs:
                if lane(job) in busy:
                    continue
                arg = job.due(now)
                if arg is not None:
                    job.state.running = True
                    busy.add(lane(job))
                    due.append((job, arg))
            return due

    def run_due(self) -> list[str]:
        """Run every job due now, one after another; the names of those that ran."""
        ran = []
        for job, arg in self.due_jobs():
            self._execute(job, arg)
            ran.append(job.name)
        return ran

    def _execute(self, job: Job, arg: datetime | date) -> bool:
        started_at = self.clock()
        started = monotonic_clock.perf_counter()
        error = None
        try:
            results = dict(job.fn(arg) or {})  # type: ignore[arg-type]
        except Exception as exc:
            log.error("job %s failed: %s: %s", job.name, type(exc).__name__, exc, exc_info=True)
            results, error = {"ok": 0.0}, f"{type(exc).__name__}: {exc}".splitlines()[0]
        ok = bool(results.pop("ok", 1.0))
        seconds = monotonic_clock.perf_counter() - started
        with self._lock:
            state = job.state
            state.last_run, state.last_ok, state.last_error = started_at, ok, error
            state.runs += 1
            state.failures += 0 if ok else 1
            job.finished(arg, ok, results, self.clock())  # type: ignore[arg-type]
            state.running = False
        if self.record is not None:
            self.record(job.name, ok, seconds, results)
        return ok

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        log.info("scheduler: %s", "; ".join(describe(job) for job in self.jobs))
        while not self.stop_event.is_set():
            self._threads = [t for t in self._threads if t.is_alive()]
            for job, arg in self.due_jobs():
                thread = threading.Thread(target=self._execute, args=(job, arg), name=f"job-{job.name}", daemon=True)
                thread.start()
                self._threads.append(thread)
            self.stop_event.wait(self.poll_s)
        for thread in self._threads:  # a job in hand finishes (its writes are idempotent, but let it end cleanly)
            thread.join()
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def status(self) -> dict[str, JobState]:
        with self._lock:
            return {job.name: JobState(**vars(job.state)) for job in self.jobs}


def lane(job: Job) -> str:
    return job.lane or job.name


def describe(job: Job) -> str:
    if isinstance(job, Every):
        return f"{job.name} every {job.seconds:g}s"
    days = "every day" if job.every_day else "trading days"
    at = job.at if isinstance(job.at, time) else getattr(job.at, "description", "a time set per day")
    return f"{job.name} at {at:%H:%M} KST on {days}" if isinstance(at, time) else f"{job.name} at {at} on {days}"
