"""Pipeline and host metrics: one Prometheus registry, sampled into ``<schema>.metrics``.

Cost model (ingest must not pay for being watched): the archiver's observer does a few
vectorised numpy operations per *batch*, never per tick; Redis, PostgreSQL and psutil
are asked only by the sampler, once every ``metrics_interval_s``. Latency percentiles are
computed from the latencies of the last interval (a bounded, strided reservoir), and the
Prometheus histogram counts are added per batch with one ``searchsorted``.

Series (all prefixed ``tickvault_``; the table keeps the same names and labels, without
histogram buckets):

========================================  ==========================================
ingest_rows_total{group}                   ticks written (after in-batch dedupe), both venues: the combined tape
ingest_venue_rows_total{group,venue}       the same per venue (KRX, NXT)
ingest_added_total{group}                  ticks new to the store (not redeliveries)
ingest_entries_total{group}                stream entries processed
ingest_dead_letters_total{group}           entries refused by validation (to the DLQ)
ingest_rows_per_second{group}              write rate over the last sample interval
ingest_venue_rows_per_second{group,venue}  the same per venue
consumer_lag{group} / consumer_pending{group}  XINFO GROUPS: not yet delivered / not yet acked (summed over the shards)
e2e_latency_seconds{group,quantile}        received_at -> committed, last interval (0.5/0.9/0.99/1)
e2e_latency_histogram_seconds{group}       the same as a cumulative Prometheus histogram
batch_write_seconds{sink,quantile}         durable write of one batch, last interval
archiver_last_commit_timestamp_seconds{group}, archiver_heartbeat_timestamp_seconds{group}
stream_entries (over the shards), dlq_entries, redis_memory_bytes (over a cluster's masters), redis_up
job_last_ok{job}, job_last_run_timestamp_seconds{job}, job_last_success_timestamp_seconds{job},
job_duration_seconds{job}, job_result{job,field}, job_runs_total{job,result}   reconcile / recovery
component_up{component}, component_restarts_total{component}       the `tickvault run` supervisor
host_cpu_percent, host_memory_used_percent, host_memory_available_bytes,
host_disk_used_percent{path}, host_disk_free_bytes{path}, process_rss_bytes, process_cpu_percent
metrics_sample_seconds                     what the last sample cost (overhead watch)
stream_ceiling_alarm, reconcile_*, ...     what sync last saw (tickvault.services.sync.state)
========================================  ==========================================
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import redis
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis.cluster import RedisCluster

from ..core.config import Settings
from ..core.errors import StoreNotInitialized
from ..core.sharding import TRANSIENT_ERRORS, shard_streams
from ..core.stream import GROUPS, group_info
from ..core.wire import DEFAULT_VENUE, VENUES
from ..services.archiver import Commit

log = logging.getLogger(__name__)

QUANTILES = (0.5, 0.9, 0.99, 1.0)
#: Upper bounds (seconds) of the end-to-end latency histogram.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Latencies kept per group and interval for percentiles; larger intervals are strided.
RESERVOIR = 200_000


class _Window:
    """Values observed since the last ``take()``: bounded, thread-safe, cheap to add to."""

    def __init__(self, cap: int = RESERVOIR) -> None:
        self.cap = cap
        self._parts: list[np.ndarray] = []
        self._size = 0
        self._lock = threading.Lock()

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        with self._lock:
            room = self.cap - self._size
            if room <= 0:
                return
            if values.size > room:
                values = values[:: math.ceil(values.size / room)]
            self._parts.append(values)
            self._size += values.size

    def take(self) -> np.ndarray:
        with self._lock:
            parts, self._parts, self._size = self._parts, [], 0
        return np.concatenate(parts) if parts else np.empty(0)


class _LatencyHistogram(Collector):
    """A Prometheus histogram fed a whole batch at a time (prometheus_client observes one value per call)."""

    def __init__(self, name: str, documentation: str, bounds: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(bounds, dtype=float)
        self._counts: dict[str, np.ndarray] = {}
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe_many(self, group: str, values: np.ndarray) -> None:
        per_bucket = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self.bounds) + 1)
        with self._lock:
            counts = self._counts.setdefault(group, np.zeros(len(self.bounds) + 1, dtype=np.int64))
            counts += per_bucket
            self._sums[group] = self._sums.get(group, 0.0) + float(values.sum())

    def collect(self):
        family = HistogramMetricFamily(self.name, self.documentation, labels=["group"])
        with self._lock:
            snapshot = {g: (c.copy(), self._sums[g]) for g, c in self._counts.items()}
        for group, (counts, total) in sorted(snapshot.items()):
            cumulative = np.cumsum(counts)
            buckets = [(f"{b:g}", float(n)) for b, n in zip(self.bounds, cumulative[:-1])]
            buckets.append(("+Inf", float(cumulative[-1])))
            family.add_metric([group], buckets, total)
        yield family


class _SyncStateCollector(Collector):
    """Exports what sync last saw (tickvault.services.sync.state.snapshot()) as gauges."""

    def __init__(self, snapshot: Callable[[], dict[str, float]], taken: set[str]) -> None:
        self.snapshot = snapshot
        self.taken = taken  # names this registry already exports

    def collect(self):
        for name, value in sorted(self.snapshot().items()):
            full = f"tickvault_{name}"
            if full not in self.taken:
                yield GaugeMetricFamily(full, f"sync: {name.replace('_', ' ')}", value=float(value))


def _disk_path(path: Path) -> Path:
    """The nearest existing ancestor: the lake directory may not exist before the first write."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class PipelineMetrics:
    """Every tickvault series in one registry (not the global one: tests and runs stay apart)."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"tickvault_{name}", doc, labels, registry=r)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"tickvault_{name}", doc, labels, registry=r)

        self.rows = counter("ingest_rows", "Ticks written per consumer group (after in-batch dedupe)", ("group",))
        self.added = counter("ingest_added", "Ticks new to the store (redeliveries excluded)", ("group",))
        self.entries = counter("ingest_entries", "Stream entries processed", ("group",))
        self.dead = counter("ingest_dead_letters", "Entries refused by validation and sent to the DLQ", ("group",))
        self.rate = gauge("ingest_rows_per_second", "Ticks written per second over the last sample interval", ("group",))
        self.venue_rows = counter("ingest_venue_rows", "Ticks written per consumer group and venue (after in-batch dedupe)", ("group", "venue"))
        self.venue_rate = gauge("ingest_venue_rows_per_second", "Ticks written per second and venue over the last sample interval",
                                ("group", "venue"))
        self.lag = gauge("consumer_lag", "Stream entries not yet delivered to the group (over every shard)", ("group",))
        self.pending = gauge("consumer_pending", "Entries delivered to the group but not yet acked (over every shard)", ("group",))
        self.latency = gauge("e2e_latency_seconds", "received_at -> committed, quantiles over the last interval (NaN: no ticks)", ("group", "quantile"))
        self.latency_hist = _LatencyHistogram("tickvault_e2e_latency_histogram_seconds", "received_at -> committed", LATENCY_BUCKETS)
        r.register(self.latency_hist)
        self.write_latency = gauge("batch_write_seconds", "Durable write of one batch per sink, quantiles over the last interval", ("sink", "quantile"))
        self.last_commit = gauge("archiver_last_commit_timestamp_seconds", "Unix time of the group's last durable commit", ("group",))
        self.heartbeat_ts = gauge("archiver_heartbeat_timestamp_seconds", "Unix time the archiver last read the stream (idle or not)", ("group",))
        self.stream_len = gauge("stream_entries", "Entries in the tick stream (XLEN, summed over its shards)")
        self.dlq_len = gauge("dlq_entries", "Entries in the dead-letter stream; anything above 0 needs a look")
        self.redis_memory = gauge("redis_memory_bytes", "Redis used_memory (summed over a cluster's masters)")
        self.redis_up = gauge("redis_up", "1 when the last sample reached Redis")
        self.job_ok = gauge("job_last_ok", "1 when the job's last run succeeded (reconcile, recovery)", ("job",))
        self.job_last_run = gauge("job_last_run_timestamp_seconds", "Unix time the job last finished", ("job",))
        self.job_last_success = gauge("job_last_success_timestamp_seconds", "Unix time the job last succeeded", ("job",))
        self.job_duration = gauge("job_duration_seconds", "Duration of the job's last run", ("job",))
        self.job_result = gauge("job_result", "Numbers the job's last run reported (gaps, repaired ticks, ...)", ("job", "field"))
        self.job_runs = counter("job_runs", "Job runs by result", ("job", "result"))
        self.component_up = gauge("component_up", "1 while a supervised component runs", ("component",))
        self.restarts = counter("component_restarts", "Restarts of a supervised component after a crash", ("component",))
        self.cpu = gauge("host_cpu_percent", "Host CPU use since the previous sample")
        self.mem_used = gauge("host_memory_used_percent", "Host memory in use")
        self.mem_available = gauge("host_memory_available_bytes", "Host memory available")
        self.disk_used = gauge("host_disk_used_percent", "Disk use of the lake's file system", ("path",))
        self.disk_free = gauge("host_disk_free_bytes", "Free bytes on the lake's file system", ("path",))
        self.rss = gauge("process_rss_bytes", "Resident memory of this process")
        self.proc_cpu = gauge("process_cpu_percent", "CPU of this process since the previous sample (100 = one core)")
        self.sample_cost = gauge("metrics_sample_seconds", "Time the last metrics sample took")

        self._latency_windows: dict[str, _Window] = {}
        self._write_windows: dict[str, _Window] = {}
        self._rate_base: dict[str, tuple[float, float]] = {}
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # first call starts the measuring interval
        psutil.cpu_percent(None)
        for group in GROUPS:
            for child in (self.rows, self.added, self.entries, self.dead):
                child.labels(group)
            for venue in VENUES:
                self.venue_rows.labels(group, venue)
        self._export_sync_state()

    def _export_sync_state(self) -> None:
        try:
            from ..services.sync import state
        except ImportError:
            return
        taken = {name for family in self.registry.collect() for name in (family.name, family.name + "_total")}
        self.registry.register(_SyncStateCollector(state.snapshot, taken))

    # ------------------------------------------------------------------ hot path
    def observe_commit(self, commit: Commit) -> None:
        """Archiver observer: called once per durable batch; numpy only, no I/O."""
        group = commit.group
        self.rows.labels(group).inc(commit.rows)
        for venue, count in self._per_venue(commit.batch):
            self.venue_rows.labels(group, venue).inc(count)
        self.added.labels(group).inc(commit.added)
        self.entries.labels(group).inc(commit.entries)
        if commit.dead:
            self.dead.labels(group).inc(commit.dead)
        self.last_commit.labels(group).set(commit.committed_at)
        self.heartbeat_ts.labels(group).set(commit.committed_at)
        self._window(self._write_windows, group).add(np.array([commit.write_seconds]))
        latencies = self._latencies(commit.batch, commit.committed_at)
        if latencies.size:
            self._window(self._latency_windows, group).add(latencies)
            self.latency_hist.observe_many(group, latencies)

    def heartbeat(self, group: str) -> None:
        """The archiver of ``group`` is alive (called on every stream read, idle or not)."""
        self.heartbeat_ts.labels(group).set(time.time())

    @staticmethod
    def _per_venue(batch: pa.Table) -> list[tuple[str, int]]:
        """(venue, ticks) of a batch: one vectorised count (a batch without the column is KRX's)."""
        if batch.num_rows == 0:
            return []
        if "venue" not in batch.column_names:
            return [(DEFAULT_VENUE, batch.num_rows)]
        counts = pc.value_counts(batch.column("venue"))
        return [(str(v), int(n)) for v, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())]

    @staticmethod
    def _latencies(batch: pa.Table, committed_at: float) -> np.ndarray:
        if batch.num_rows == 0 or "received_at" not in batch.column_names:
            return np.empty(0)
        received = batch.column("received_at")
        if received.null_count:
            received = pc.drop_null(received)
        if len(received) == 0:
            return np.empty(0)
        micros = pc.cast(received, pa.int64()).to_numpy()
        return committed_at - micros / 1e6

    def _window(self, windows: dict[str, _Window], key: str) -> _Window:
        window = windows.get(key)
        if window is None:
            window = windows.setdefault(key, _Window())
        return window

    # ------------------------------------------------------------------ jobs and components
    def record_job(self, job: str, ok: bool, seconds: float, results: Mapping[str, float] | None = None) -> None:
        """Result of one reconcile/recovery run (numbers in ``results`` become job_result{field})."""
        now = time.time()
        self.job_ok.labels(job).set(1 if ok else 0)
        self.job_last_run.labels(job).set(now)
        if ok:
            self.job_last_success.labels(job).set(now)
        self.job_duration.labels(job).set(seconds)
        self.job_runs.labels(job, "ok" if ok else "failed").inc()
        for field, value in (results or {}).items():
            self.job_result.labels(job, field).set(float(value))

    def set_component(self, name: str, up: bool) -> None:
        self.component_up.labels(name).set(1 if up else 0)

    def component_restarted(self, name: str) -> None:
        self.restarts.labels(name).inc()

    # ------------------------------------------------------------------ sampling
    def sample(self, client: redis.Redis | None, now: float | None = None) -> None:
        """Refresh the polled gauges: rates, percentiles, Redis, host. Called by the sampler only."""
        started = time.perf_counter()
        now = time.time() if now is None else now
        self._sample_rates(now)
        self._sample_windows()
        if client is not None:
            self._sample_redis(client)
        self._sample_host()
        self.sample_cost.set(time.perf_counter() - started)

    def _sample_rates(self, now: float) -> None:
        for group in GROUPS:
            series: list[tuple[str, Gauge, dict[str, str]]] = [(group, self.rate, {"group": group})]
            series += [(f"{group}:{venue}", self.venue_rate, {"group": group, "venue": venue}) for venue in VENUES]
            for key, gauge, labels in series:
                name = "tickvault_ingest_rows_total" if gauge is self.rate else "tickvault_ingest_venue_rows_total"
                total = self.value(name, **labels) or 0.0
                base = self._rate_base.get(key)
                if base is not None and now > base[0]:
                    gauge.labels(**labels).set((total - base[1]) / (now - base[0]))
                self._rate_base[key] = (now, total)

    def _sample_windows(self) -> None:
        for gauge, windows, label in ((self.latency, self._latency_windows, "group"), (self.write_latency, self._write_windows, "sink")):
            for key, window in list(windows.items()):
                values = window.take()
                qs = np.quantile(values, QUANTILES) if values.size else [math.nan] * len(QUANTILES)
                for q, v in zip(QUANTILES, qs):
                    gauge.labels(**{label: key, "quantile": f"{q:g}"}).set(float(v))

    def _sample_redis(self, client: redis.Redis) -> None:
        """The stream's gauges summed over its shards (one by default): lag, pending and length
        of a group are what it has left on all of them."""
        s = self.settings
        streams = shard_streams(s)
        try:
            shards = [group_info(client, key) for key in streams]
            pipe = client.pipeline(transaction=False)
            for key in (*streams, s.dlq_stream):
                pipe.xlen(key)
            *lengths, dlq_len = pipe.execute()
            memory = redis_memory(client)
        except (redis.RedisError, *TRANSIENT_ERRORS) as exc:
            self.redis_up.set(0)
            log.warning("metrics: Redis unreachable (%s); stream gauges not updated", exc)
            return
        self.redis_up.set(1)
        for name in sorted({name for groups in shards for name in groups}):
            infos = [groups[name] for groups in shards if name in groups]
            self.lag.labels(name).set(float(sum(info.get("lag") or 0 for info in infos)))
            self.pending.labels(name).set(float(sum(info.get("pending") or 0 for info in infos)))
        self.stream_len.set(sum(lengths))
        self.dlq_len.set(dlq_len)
        self.redis_memory.set(memory)

    def _sample_host(self) -> None:
        self.cpu.set(psutil.cpu_percent(None))
        memory = psutil.virtual_memory()
        self.mem_used.set(memory.percent)
        self.mem_available.set(memory.available)
        path = _disk_path(Path(self.settings.lake_dir))
        try:
            disk = psutil.disk_usage(str(path))
        except OSError as exc:
            log.warning("metrics: cannot read disk usage of %s (%s)", path, exc)
        else:
            self.disk_used.labels(str(path)).set(disk.percent)
            self.disk_free.labels(str(path)).set(disk.free)
        with self._process.oneshot():
            self.rss.set(self._process.memory_info().rss)
            self.proc_cpu.set(self._process.cpu_percent(None))

    # ------------------------------------------------------------------ snapshot
    def table_rows(self, ts: datetime | None = None) -> list[tuple[datetime, str, str, float]]:
        """(ts, name, labels json, value) for the metrics table: no buckets, no NaN."""
        ts = ts or datetime.now(UTC)
        out: list[tuple[datetime, str, str, float]] = []
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith(("_bucket", "_created")) or not math.isfinite(sample.value):
                    continue
                out.append((ts, sample.name, json.dumps(sample.labels, sort_keys=True), float(sample.value)))
        return out

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's current value (tests, health)."""
        return self.registry.get_sample_value(name, labels or None)


class MetricsWriter:
    """Appends metric rows to the hot store's ``metrics`` table (the store owns the SQL)."""

    def __init__(self, settings: Settings) -> None:
        from ..stores.hot import HotStore

        self.store = HotStore(settings)

    def write(self, rows: list[tuple[datetime, str, str, float]]) -> int:
        """Rows written; 0 (with a warning) while the schema is not initialised."""
        if not rows:
            return 0
        try:
            self.store.write_metrics(rows)
        except StoreNotInitialized:
            log.warning("metrics: schema %s is not initialised; run `tickvault init` (samples are kept only on /metrics until then)",
                        self.store.schema)
            return 0
        return len(rows)

    def close(self) -> None:
        self.store.close()


def redis_memory(client: Any) -> float:
    """Bytes Redis uses: the one server's, or the sum over a cluster's masters (INFO on a cluster
    client asks one node only unless told otherwise)."""
    if not isinstance(client, RedisCluster):
        return float(client.info("memory").get("used_memory", 0))
    replies = client.info("memory", target_nodes=RedisCluster.PRIMARIES)
    per_node = [replies] if "used_memory" in replies else list(replies.values())  # one master: its reply alone
    return float(sum(reply.get("used_memory", 0) for reply in per_node))


class MetricsSampler:
    """Every ``metrics_interval_s``: refresh the polled gauges, then append a snapshot to the table.

    A down Redis or PostgreSQL costs one log line per sample, never an exception: metrics
    must not be the reason ingest stops.
    """

    def __init__(
        self,
        metrics: PipelineMetrics,
        settings: Settings,
        redis_client: redis.Redis | None = None,
        writer: MetricsWriter | None = None,
        on_sample: Callable[[int], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.redis = redis_client
        self.writer = writer if writer is not None else MetricsWriter(settings)
        self.on_sample = on_sample
        self.stop_event = threading.Event()
        self.samples_written = 0

    def sample_once(self) -> int:
        """One sample; returns the rows written to the table (0 when PostgreSQL is down)."""
        self.metrics.sample(self.redis)
        rows = self.metrics.table_rows()
        try:
            written = self.writer.write(rows)
        except Exception as exc:  # noqa: BLE001 - a down database must not stop the sampler
            log.warning("metrics: could not write %d rows to %s.metrics (%s); next try in %.0fs",
                        len(rows), self.settings.pg_schema, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                        self.settings.metrics_interval_s)
            return 0
        self.samples_written += 1
        if self.on_sample:
            self.on_sample(written)
        return written

    def run(self) -> int:
        """Sample until stopped (the supervisor's component interface)."""
        interval = self.settings.metrics_interval_s
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            self.sample_once()
            next_at += interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.writer.close()
        if self.redis is not None:
            self.redis.close()


def serve(metrics: PipelineMetrics, host: str, port: int) -> Any:
    """Start the /metrics endpoint in a daemon thread; returns the server (``.shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
