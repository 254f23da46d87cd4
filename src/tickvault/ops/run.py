"""`tickvault run`: every long-running part in one supervised process.

Components (each in its own thread, each restarted with backoff when it crashes):

* ``archiver-hot`` / ``archiver-cold`` — the consume -> write -> ack loops (archiver.py);
* ``sync`` (``--only reconcile``) — the sync area's scheduler: safe stream trims every
  ``trim_interval_s``, today's reconcile every ``reconcile_interval_s``, the day's final
  reconcile at ``reconcile_final_time``;
* ``recovery`` — the daily broker comparison at ``recovery_time`` KST on trading days
  (tickvault.recovery);
* ``metrics`` — the sampler into ``<schema>.metrics``; ``endpoint`` — Prometheus /metrics.

Why threads in one process: the archivers spend their time waiting on Redis and the
databases (the GIL is released), the other parts wake up rarely, and one process is one
thing to deploy, health-check and stop. SIGTERM stops every component; each archiver
finishes and acks the batch in hand, so a stop never loses or duplicates a tick.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from ..core.config import Settings
from ..core.wire import KST
from .metrics import MetricsSampler, PipelineMetrics, serve

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------- components
class ArchiverRunnable:
    """An archiver wired to the metrics: commits observed, every stream read is a heartbeat."""

    def __init__(self, settings: Settings, group: str, metrics: PipelineMetrics, consumer: str | None = None) -> None:
        from ..services.archiver import build_archiver

        self.archiver = build_archiver(settings, group, consumer)
        self.archiver.observers.append(metrics.observe_commit)
        read = self.archiver.consumer.read

        def read_with_heartbeat(count: int, block_ms: int):
            entries = read(count, block_ms)
            metrics.heartbeat(group)
            return entries

        self.archiver.consumer.read = read_with_heartbeat  # type: ignore[method-assign]

    def run(self) -> int:
        return self.archiver.run()

    def stop(self) -> None:
        self.archiver.stop()

    def close(self) -> None:
        self.archiver.store.close()
        self.archiver.consumer.client.close()


class DailyJob:
    """Calls ``fn(day)`` once per KST trading day at ``at`` (HH:MM KST); catches up if started late.

    A failed run is tried again ``retry_after_s`` later, at most ``attempts`` times a day
    (a broker outage at 16:10 should not cost the day's verification)."""

    def __init__(self, name: str, fn: Callable[[date], dict[str, float] | None], at: str, metrics: PipelineMetrics,
                 is_trading_day: Callable[[date], bool], attempts: int = 3, retry_after_s: float = 1800.0) -> None:
        hour, minute = (int(part) for part in at.split(":"))
        self.name = name
        self.fn = fn
        self.at = (hour, minute)
        self.metrics = metrics
        self.is_trading_day = is_trading_day
        self.attempts = attempts
        self.retry_after_s = retry_after_s
        self.stop_event = threading.Event()
        self.last_day: date | None = None  # the day that is done (succeeded or out of attempts)
        self._tries: dict[date, int] = {}
        self._not_before = 0.0

    def due(self, now: datetime) -> date | None:
        """The KST day to run for at ``now``, or None."""
        local = now.astimezone(KST)
        day = local.date()
        if self.last_day == day or not self.is_trading_day(day):
            return None
        if (local.hour, local.minute) < self.at or time.monotonic() < self._not_before:
            return None
        return day

    def run_once(self, day: date) -> bool:
        results: dict[str, float] = {}

        def call() -> dict[str, float] | None:
            out = self.fn(day)
            results.update(out or {})
            return out

        ok = run_job(self.name, call, self.metrics)
        tries = self._tries[day] = self._tries.get(day, 0) + 1
        if ok or results.get("skipped") or tries >= self.attempts:  # a skip (no credentials) will not fix itself
            self.last_day = day
            self._tries.pop(day, None)
        else:
            log.warning("%s of %s: attempt %d of %d failed; next try in %.0f min", self.name, day, tries, self.attempts, self.retry_after_s / 60)
            self._not_before = time.monotonic() + self.retry_after_s
        return ok

    def run(self) -> int:
        while not self.stop_event.is_set():
            day = self.due(datetime.now(KST))
            if day is not None:
                self.run_once(day)
            self.stop_event.wait(30.0)
        return 0

    def stop(self) -> None:
        self.stop_event.set()


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


def run_job(name: str, fn: Callable[[], dict[str, float] | None], metrics: PipelineMetrics) -> bool:
    started = time.perf_counter()
    try:
        results = fn() or {}
    except Exception as exc:
        log.error("%s failed: %s: %s", name, type(exc).__name__, exc, exc_info=True)
        metrics.record_job(name, False, time.perf_counter() - started)
        return False
    ok = bool(results.pop("ok", 1))
    metrics.record_job(name, ok, time.perf_counter() - started, results)
    return ok


# ---------------------------------------------------------------------- the other areas, imported lazily
def optional(module: str) -> Any | None:
    """Import an area that may not be installed/finished yet; None (with a log line) when absent."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        log.warning("%s is not available (%s); its part of `tickvault run` is skipped", module, exc)
        return None


def sync_scheduler(settings: Settings) -> Callable[[], Runnable] | None:
    """The sync area's scheduler: safe trims, today's reconcile, the day's final reconcile.

    Its results land in tickvault.sync.state, which the metrics export (reconcile_*,
    stream_ceiling_alarm)."""
    module = optional("tickvault.services.sync.scheduler")
    if module is None or not hasattr(module, "SyncScheduler"):
        return None
    return lambda: module.SyncScheduler(settings)


def daily_recovery(settings: Settings) -> Callable[[date], dict[str, float]] | None:
    """The broker comparison of one day (tickvault.recovery)."""
    module = optional("tickvault.services.recovery")
    if module is None:
        return None
    fn = getattr(module, "recover_day", None)
    if not callable(fn):
        log.warning("tickvault.recovery has no recover_day function; daily recovery is skipped")
        return None

    def job(day: date) -> dict[str, float]:
        report = fn(settings, day)
        if report is None:  # no broker credentials: logged by recovery; not a verified day
            return {"ok": 0.0, "skipped": 1.0}
        as_dict = report.to_dict() if hasattr(report, "to_dict") else (report if isinstance(report, dict) else {})
        numbers = {k: float(v) for k, v in as_dict.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        complete = as_dict.get("complete", getattr(report, "complete", True))
        numbers["ok"] = 1.0 if complete else 0.0
        return numbers

    return job


def daily_compaction(settings: Settings) -> Callable[[date], dict[str, float]]:
    """Merge the day's small lake files once the day's writes (incl. recovery) are done."""

    def job(day: date) -> dict[str, float]:
        from ..stores.lake import Lake

        lake = Lake(settings)
        try:
            result = lake.compact(day)
        finally:
            lake.close()
        return {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}

    return job


def trading_day_check() -> Callable[[date], bool]:
    calendar = optional("tickvault.core.calendar")
    if calendar is not None and hasattr(calendar, "is_trading_day"):
        return calendar.is_trading_day
    return lambda day: day.weekday() < 5


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
    if "reconcile" in components:
        scheduler = sync_scheduler(settings)
        if scheduler is not None:
            sup.add(Component("sync", scheduler))
    if "recovery" in components:
        recover = daily_recovery(settings)
        if recover is not None:
            check = trading_day_check()
            sup.add(Component("recovery", lambda: DailyJob("recovery", recover, settings.recovery_time, metrics, check)))
    if "compact" in components:
        sup.add(Component("compact", lambda: DailyJob("compact", daily_compaction(settings), settings.compact_time, metrics, trading_day_check())))
    if "metrics" in components:
        from ..core.stream import connect

        def sampler() -> MetricsSampler:
            return MetricsSampler(metrics, settings, redis_client=connect(settings.redis_dsn))

        sup.add(Component("metrics", sampler))
    if "endpoint" in components:
        sup.add(Component("endpoint", lambda: EndpointRunnable(metrics, settings.metrics_host, settings.metrics_port)))
    return sup
