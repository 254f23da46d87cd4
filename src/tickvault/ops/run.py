"""`tickvault run`: every long-running part in one supervised process.

Components (each in its own thread, each restarted with backoff when it crashes):

* ``archiver-hot`` / ``archiver-cold`` — the consume -> write -> ack loops (archiver.py);
* ``schedule`` — the one scheduler (schedule.py) running the recurring jobs of the chosen
  parts: hot maintenance hourly (``hot``); safe stream trims every ``trim_interval_s``,
  today's reconcile every ``reconcile_interval_s`` and the day's final reconcile at
  ``reconcile_final_time`` (``reconcile``); the broker comparison of each venue after its close
  plus ``recovery_margin_minutes`` (``recovery``: KRX, then NXT after 20:00); lake compaction at ``compact_time`` (``compact``);
* ``metrics`` — the sampler into ``<schema>.metrics``; ``endpoint`` — Prometheus /metrics.

Why threads in one process: the archivers spend their time waiting on Redis and the
databases (the GIL is released), the other parts wake up rarely, and one process is one
thing to deploy, health-check and stop. SIGTERM stops every component; each archiver
finishes and acks the batch in hand, so a stop never loses or duplicates a tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Protocol

from ..core.calendar import venue_active, venue_close
from ..core.config import Settings
from ..core.sharding import shard_streams, stream_client
from ..core.stream import require_reachable
from ..core.wire import KST, VENUES, Venue
from ..services.archiver import Archiver, build_archiver, install_signal_handlers
from ..services.sync import state as sync_state
from ..services.sync.trim import trim_shards
from ..stores.hot import HotStore
from .metrics import MetricsSampler, PipelineMetrics, serve
from .schedule import Daily, Every, Job, Results, Scheduler

log = logging.getLogger(__name__)

# The jobs import their services when they run: an archiver process (`tickvault archive hot`)
# then never loads DuckDB, the broker clients or the report (~60 MB of its peak RSS).

ALL_COMPONENTS = ("hot", "cold", "reconcile", "recovery", "compact", "metrics", "endpoint")


class Runnable(Protocol):
    def run(self) -> int | None: ...

    def stop(self) -> None: ...


@dataclass
class Component:
    """A named factory: every (re)start builds a fresh runnable (fresh connections, fresh state)."""

    name: str
    factory: Callable[[], Runnable]


@dataclass
class Supervisor:
    """Runs components in threads; restarts a crashed or exited one with jittered backoff."""

    metrics: PipelineMetrics
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    healthy_after_s: float = 60.0  # a run this long resets the backoff
    components: list[Component] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    _current: dict[str, Runnable] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, component: Component) -> None:
        self.components.append(component)
        self.metrics.restarts.labels(component.name)  # exported as 0 from the start, not only after a crash
        self.metrics.set_component(component.name, False)

    def start(self) -> None:
        for component in self.components:
            thread = threading.Thread(target=self._keep_running, args=(component,), name=f"run-{component.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Ask every component to stop (idempotent, safe from a signal handler)."""
        self.stop_event.set()
        with self._lock:
            running = list(self._current.values())
        for runnable in running:
            try:
                runnable.stop()
            except Exception:
                log.exception("stopping a component failed")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until every component thread ended; False if ``timeout_s`` ran out first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            while thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                thread.join(0.5 if left is None else min(0.5, left))
        return True

    def _keep_running(self, component: Component) -> None:
        delay = self.backoff_initial_s
        while not self.stop_event.is_set():
            started = time.monotonic()
            outcome = self._run_once(component)
            if self.stop_event.is_set():
                break
            if time.monotonic() - started >= self.healthy_after_s:
                delay = self.backoff_initial_s
            log.error("component %s %s; restarting in %.1fs", component.name, outcome, delay)
            self.metrics.component_restarted(component.name)
            self.stop_event.wait(delay)
            delay = min(delay * 2, self.backoff_max_s)
        log.info("component %s stopped", component.name)

    def _run_once(self, component: Component) -> str:
        try:
            runnable = component.factory()
        except Exception as exc:  # noqa: BLE001 - e.g. Redis or PostgreSQL down at start: retried
            log.error("component %s could not start: %s: %s", component.name, type(exc).__name__, exc)
            return "failed to start"
        with self._lock:
            self._current[component.name] = runnable
        if self.stop_event.is_set():  # a stop raced with the start
            runnable.stop()
        self.metrics.set_component(component.name, True)
        try:
            code = runnable.run()
            outcome = f"exited with code {code}"
        except Exception:
            log.exception("component %s crashed", component.name)
            outcome = "crashed"
        finally:
            self.metrics.set_component(component.name, False)
            with self._lock:
                self._current.pop(component.name, None)
            close = getattr(runnable, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing component %s failed", component.name)
        return outcome


def group_archivers(settings: Settings, group: str, consumer: str | None = None) -> list[Archiver]:
    """The archivers of one group: one per shard of the stream (TICKVAULT_STREAM_SHARDS; one by
    default), each reading its own shard key, all writing through one store; dead letters go to the
    one dead-letter stream."""
    archivers = [build_archiver(settings.model_copy(update={"stream": key}), group, consumer) for key in shard_streams(settings)]
    for archiver in archivers:
        archiver.dlq_stream = settings.dlq_stream
    for archiver in archivers[1:]:
        archiver.store = archivers[0].store
    return archivers


def run_together(archivers: Sequence[Archiver]) -> int:
    """Run the shard archivers of a group in threads; the worst exit code (one crash stops all)."""
    if len(archivers) == 1:
        return archivers[0].run()
    codes: list[int] = []

    def run(archiver: Archiver) -> None:
        try:
            codes.append(archiver.run())
        except Exception:
            log.exception("archiver %s of %s crashed", archiver.store.name, archiver.consumer.stream)
            codes.append(1)
            for other in archivers:
                other.stop()

    threads = [threading.Thread(target=run, args=(a,), name=f"archive-{a.store.name}-{a.consumer.stream}") for a in archivers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return max(codes, default=0)


# ---------------------------------------------------------------------- components
class ArchiverRunnable:
    """A group's archivers (one per stream shard) wired to the metrics: commits observed, every
    stream read is a heartbeat."""

    def __init__(self, settings: Settings, group: str, metrics: PipelineMetrics, consumer: str | None = None) -> None:
        self.archivers = group_archivers(settings, group, consumer)
        self.archiver = self.archivers[0]
        for archiver in self.archivers:
            archiver.observers.append(metrics.observe_commit)
            read = archiver.consumer.read

            def read_with_heartbeat(count: int, block_ms: int | None, read=read):
                entries = read(count, block_ms)
                metrics.heartbeat(group)
                return entries

            archiver.consumer.read = read_with_heartbeat  # type: ignore[method-assign]

    def run(self) -> int:
        return run_together(self.archivers)

    def stop(self) -> None:
        for archiver in self.archivers:
            archiver.stop()

    def close(self) -> None:
        self.archiver.store.close()
        for archiver in self.archivers:
            archiver.consumer.client.close()


class EndpointRunnable:
    """The Prometheus endpoint; a busy port fails the start and is retried by the supervisor."""

    def __init__(self, metrics: PipelineMetrics, host: str, port: int) -> None:
        self.server = serve(metrics, host, port)
        self.stop_event = threading.Event()
        log.info("metrics endpoint on http://%s:%d/metrics", host, self.server.server_port)

    def run(self) -> int:
        self.stop_event.wait()
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------- scheduled jobs
HOT_MAINTAIN_EVERY_S = 3600.0


def hot_maintenance(settings: Settings) -> Callable[[datetime], Results]:
    """Partitions ahead and retention (PostgreSQL mode); outside the ingest path, so a slow
    or refused drop never holds a batch back."""

    def job(now: datetime) -> Results:
        with closing(HotStore(settings)) as store:
            report = store.maintain(now)
        return {"dropped_partitions": float(len(report["dropped_partitions"]))}

    return job


def stream_trim(settings: Settings) -> Callable[[datetime], Results]:
    """Trim every shard of the stream below what both groups acknowledged there."""

    def job(now: datetime) -> Results:
        results = trim_shards(settings)
        return {"trimmed": float(sum(r.trimmed for r in results)), "alarm": 1.0 if any(r.alarm for r in results) else 0.0}

    return job


def reconcile_today(settings: Settings) -> Callable[[datetime], Results]:
    """Today up to ``reconcile_settle_s`` ago: the latest ticks are still the archivers' business."""

    def job(now: datetime) -> Results:
        return _reconcile(settings, now.astimezone(KST).date(), now - timedelta(seconds=settings.reconcile_settle_s))

    return job


def reconcile_day(settings: Settings) -> Callable[[date], Results]:
    return lambda day: _reconcile(settings, day, None)


def _reconcile(settings: Settings, day: date, until: datetime | None) -> Results:
    try:
        from ..services.sync.reconcile import reconcile

        report = reconcile(settings, day, repair=True, until=until)  # records its outcome in sync.state
    except Exception:
        sync_state.record_reconcile_failure()
        raise
    return {"differences": float(len(report.differences)), "repaired_ticks": float(report.added_to_hot + report.added_to_cold),
            "consistent": 1.0 if report.consistent else 0.0}


def daily_recovery(settings: Settings, venue: Venue) -> Callable[[date], Results]:
    """The broker comparison of one venue's day; without credentials a skipped (not verified) day."""

    def job(day: date) -> Results:
        from ..services.recovery import recover_day
        from .report import write_daily_report

        report = recover_day(settings, day, venue)
        write_daily_report(settings, day)  # report_dir set: the day's page, after each venue's recovery
        if report is None:
            return {"ok": 0.0, "skipped": 1.0}
        numbers = {name: float(value) for name, value in report.to_dict()["totals"].items()}
        numbers["ok"] = 1.0 if report.complete else 0.0
        return numbers

    return job


def daily_adjustments(settings: Settings) -> Callable[[date], Results]:
    """After recovery: refresh the day's symbols' adjustment factors (수정주가) from the broker."""

    def job(day: date) -> Results:
        from ..services.adjustments import refresh_day

        table = refresh_day(settings, day)
        return {"skipped": 1.0} if table is None else {"factors": float(table.num_rows)}

    return job


def daily_compaction(settings: Settings) -> Callable[[date], Results]:
    """Merge the day's small lake files once the day's writes (incl. recovery) are done."""

    def job(day: date) -> Results:
        from ..stores.lake import Lake

        with closing(Lake(settings)) as lake:
            result = lake.compact(day)
        return {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}

    return job


class VenueRecoveryTime:
    """When a venue's recovery runs on a date: its close (session table) plus a margin; None
    when the venue does not trade that date (NXT before its launch)."""

    def __init__(self, venue: Venue, margin_minutes: int):
        self.venue = venue
        self.margin = timedelta(minutes=margin_minutes)
        self.description = f"{venue} close + {margin_minutes} min"

    def __call__(self, day: date) -> dtime | None:
        if not venue_active(day, self.venue):
            return None
        at = venue_close(day, self.venue) + self.margin
        return at.time() if at.date() == day else dtime(23, 59)


def recovery_time(venue: Venue, margin_minutes: int) -> VenueRecoveryTime:
    return VenueRecoveryTime(venue, margin_minutes)


def scheduled_jobs(settings: Settings, components: Sequence[str]) -> list[Job]:
    """The recurring jobs of the chosen components (names from ALL_COMPONENTS). Recovery and
    compaction share a lane, so a late start (both due) compacts after recovery's upserts."""
    jobs: list[Job] = []
    if "hot" in components:
        jobs.append(Every("hot-maintain", HOT_MAINTAIN_EVERY_S, hot_maintenance(settings)))
    if "reconcile" in components:
        jobs.append(Every("trim", settings.trim_interval_s, stream_trim(settings)))
        jobs.append(Every("reconcile", settings.reconcile_interval_s, reconcile_today(settings),
                          first_after_s=min(60.0, settings.reconcile_interval_s), lane="reconcile"))
        jobs.append(Daily("reconcile-final", settings.reconcile_final_time, reconcile_day(settings), every_day=True,
                          retry_after_s=settings.reconcile_interval_s, lane="reconcile"))
    if "recovery" in components:
        for venue in VENUES:
            jobs.append(Daily(f"recovery-{venue.lower()}", recovery_time(venue, settings.recovery_margin_minutes),
                              daily_recovery(settings, venue), lane="day-end"))
        jobs.append(Daily("adjustments", recovery_time("KRX", settings.recovery_margin_minutes), daily_adjustments(settings),
                          lane="day-end"))
    if "compact" in components:
        jobs.append(Daily("compact", settings.compact_time, daily_compaction(settings), lane="day-end"))
    return jobs


# ---------------------------------------------------------------------- assembly
def build_supervisor(settings: Settings, components: tuple[str, ...] = ALL_COMPONENTS,
                     metrics: PipelineMetrics | None = None) -> Supervisor:
    """A supervisor with the chosen components (names from ALL_COMPONENTS)."""
    unknown = set(components) - set(ALL_COMPONENTS)
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL_COMPONENTS)}")
    metrics = metrics or PipelineMetrics(settings)
    sup = Supervisor(metrics, backoff_max_s=settings.run_restart_max_s)
    for group in ("hot", "cold"):
        if group in components:
            sup.add(Component(f"archiver-{group}", lambda g=group: ArchiverRunnable(settings, g, metrics)))
    if scheduled_jobs(settings, components):
        sup.add(Component("schedule", lambda: Scheduler(scheduled_jobs(settings, components), record=metrics.record_job)))
    if "metrics" in components:
        def sampler() -> MetricsSampler:
            return MetricsSampler(metrics, settings, redis_client=stream_client(settings))

        sup.add(Component("metrics", sampler))
    if "endpoint" in components:
        sup.add(Component("endpoint", lambda: EndpointRunnable(metrics, settings.metrics_host, settings.metrics_port)))
    return sup


def archive(settings: Settings, groups: Sequence[str], consumer: str | None = None, with_sync: bool = False) -> int:
    """`tickvault archive`: the archivers of ``groups`` until SIGTERM/SIGINT, with the scheduler
    running hot maintenance (with the hot group) and, ``with_sync``, trim and reconcile.
    Returns the exit code: 0 after a clean stop, non-zero when an archiver failed."""
    names = [f"{consumer}-{g}" if consumer and len(groups) > 1 else consumer for g in groups]
    archivers: list[Archiver] = []
    stop_requested = threading.Event()  # a SIGTERM while starting up still ends in a clean stop

    def stop() -> None:
        stop_requested.set()
        for a in archivers:
            a.stop()

    require_reachable(settings.redis_dsn)
    install_signal_handlers(stop)
    per_group = [group_archivers(settings, g, name) for g, name in zip(groups, names)]
    archivers.extend(a for group in per_group for a in group)
    if stop_requested.is_set():
        stop()
    jobs = scheduled_jobs(settings, [*groups, *(["reconcile"] if with_sync else [])])
    scheduler = Scheduler(jobs) if jobs else None
    codes: dict[str, int] = {}

    def run(group: list[Archiver]) -> None:
        name = group[0].store.name
        try:
            codes[name] = run_together(group)
        except Exception:
            log.exception("archiver %s crashed", name)
            codes[name] = 1
            for other in archivers:
                other.stop()

    threads = [threading.Thread(target=run, args=(group,), name=f"archive-{group[0].store.name}") for group in per_group]
    if scheduler is not None:
        threads.append(threading.Thread(target=scheduler.run, name="archive-schedule", daemon=True))
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads[: len(per_group)]):
        for t in threads[: len(per_group)]:
            t.join(0.5)
    if scheduler is not None:
        scheduler.stop()
        threads[-1].join()
    for group in per_group:
        group[0].store.close()
    return max(codes.values(), default=0)

