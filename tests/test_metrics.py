"""Metrics: what the archiver observer counts, what the sampler reads from real Redis and
writes into the real metrics table, and what the /metrics endpoint serves."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import psycopg
import pyarrow as pa

from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.core.wire import Tick, ticks_to_table
from tickvault.ops.metrics import MetricsSampler, MetricsWriter, PipelineMetrics, serve
from tickvault.services.archiver import Commit
from tickvault.stores.hot import HotStore


def _batch(n: int, received: datetime, start_cum: int = 0) -> pa.Table:
    ts = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    ticks = [
        Tick("005930", ts + timedelta(seconds=i), Decimal("70000"), 1, start_cum + i + 1, "B", "sim", received + timedelta(milliseconds=i))
        for i in range(n)
    ]
    return ticks_to_table(ticks)


def _commit(group: str, batch: pa.Table, committed_at: float, write_seconds: float = 0.02, dead: int = 0) -> Commit:
    return Commit(group=group, entries=batch.num_rows + dead, rows=batch.num_rows, added=batch.num_rows - 1,
                  dead=dead, write_seconds=write_seconds, committed_at=committed_at, batch=batch)


def test_observer_counts_rows_and_latency_percentiles() -> None:
    settings = Settings()  # no server: the metrics live in memory
    m = PipelineMetrics(settings)
    received = datetime.now(UTC) - timedelta(seconds=2)
    batch = _batch(1000, received)  # received_at spread over 0..0.999 s after `received`
    committed = received.timestamp() + 2.0
    m.observe_commit(_commit("hot", batch, committed, dead=3))

    assert m.value("tickvault_ingest_rows_total", group="hot") == 1000
    assert m.value("tickvault_ingest_added_total", group="hot") == 999
    assert m.value("tickvault_ingest_entries_total", group="hot") == 1003
    assert m.value("tickvault_ingest_dead_letters_total", group="hot") == 3
    assert m.value("tickvault_ingest_rows_total", group="cold") == 0

    m.sample(None)
    p50 = m.value("tickvault_e2e_latency_seconds", group="hot", quantile="0.5")
    pmax = m.value("tickvault_e2e_latency_seconds", group="hot", quantile="1")
    # latencies are 2.0 - i/1000 s for i in 0..999
    assert abs(p50 - 1.5) < 0.01
    assert abs(pmax - 2.0) < 0.001
    assert m.value("tickvault_batch_write_seconds", sink="hot", quantile="0.99") == 0.02
    # histogram: all 1000 latencies are between 1.0 and 2.5 s
    assert m.value("tickvault_e2e_latency_histogram_seconds_bucket", group="hot", le="1") == 0
    assert m.value("tickvault_e2e_latency_histogram_seconds_bucket", group="hot", le="2.5") == 1000
    assert m.value("tickvault_e2e_latency_histogram_seconds_count", group="hot") == 1000

    # the next interval saw no ticks: quantiles become NaN and are left out of the table
    m.sample(None)
    assert math.isnan(m.value("tickvault_e2e_latency_seconds", group="hot", quantile="0.5"))
    names = {row[1] for row in m.table_rows()}
    assert "tickvault_e2e_latency_seconds" not in names
    assert not any(name.endswith("_bucket") for name in names)
    assert "tickvault_e2e_latency_histogram_seconds_count" in names


def test_ticks_without_received_at_are_counted_but_not_timed() -> None:
    settings = Settings()  # no server: the metrics live in memory
    m = PipelineMetrics(settings)
    batch = _batch(10, datetime.now(UTC)).drop_columns(["received_at"])
    batch = batch.append_column("received_at", pa.nulls(10, pa.timestamp("us", tz="UTC")))
    m.observe_commit(_commit("cold", batch, time.time()))
    assert m.value("tickvault_ingest_rows_total", group="cold") == 10
    assert m.value("tickvault_e2e_latency_histogram_seconds_count", group="cold") is None


def test_rate_is_rows_per_second_between_samples() -> None:
    settings = Settings()  # no server: the metrics live in memory
    m = PipelineMetrics(settings)
    now = time.time()
    m.sample(None, now=now)
    m.observe_commit(_commit("hot", _batch(500, datetime.now(UTC)), now))
    m.sample(None, now=now + 10)
    assert m.value("tickvault_ingest_rows_per_second", group="hot") == 50.0
    assert m.value("tickvault_ingest_venue_rows_per_second", group="hot", venue="KRX") == 50.0
    assert m.value("tickvault_ingest_venue_rows_per_second", group="hot", venue="NXT") == 0.0


def test_ticks_are_counted_per_venue_and_combined() -> None:
    m = PipelineMetrics(Settings())
    batch = _batch(10, datetime.now(UTC))
    venues = pa.array(["NXT"] * 4 + ["KRX"] * 6)
    m.observe_commit(_commit("cold", batch.set_column(batch.schema.get_field_index("venue"), "venue", venues), time.time()))
    assert m.value("tickvault_ingest_venue_rows_total", group="cold", venue="NXT") == 4
    assert m.value("tickvault_ingest_venue_rows_total", group="cold", venue="KRX") == 6
    assert m.value("tickvault_ingest_rows_total", group="cold") == 10  # the combined tape
    assert m.value("tickvault_ingest_venue_rows_total", group="hot", venue="NXT") == 0  # present from the start
    rows = {(name, labels) for _, name, labels, _ in m.table_rows()}
    assert ("tickvault_ingest_venue_rows_total", '{"group": "cold", "venue": "NXT"}') in rows


def test_sampler_reads_redis_and_fills_metrics_table(settings: Settings, rclient) -> None:
    # a stream with 30 entries, a group that read 10 and acked 4, and 2 dead letters
    Publisher(rclient, settings.stream).publish_fields(
        {"v": "1", "symbol": "005930", "ts": "2026-11-26T09:00:00+09:00", "price": "1", "volume": "1", "cum_volume": str(i + 1)}
        for i in range(30)
    )
    rclient.xgroup_create(settings.stream, "hot", id="0")
    delivered = rclient.xreadgroup("hot", "c1", {settings.stream: ">"}, count=10)[0][1]
    rclient.xack(settings.stream, "hot", *[i for i, _ in delivered[:4]])
    rclient.xadd(settings.dlq_stream, {"reason": "x"})
    rclient.xadd(settings.dlq_stream, {"reason": "y"})

    m = PipelineMetrics(settings)
    m.observe_commit(_commit("hot", _batch(100, datetime.now(UTC)), time.time()))
    samples: list[int] = []
    sampler = MetricsSampler(m, settings, redis_client=rclient, on_sample=samples.append)
    try:
        assert sampler.sample_once() == 0  # not initialised yet: kept on /metrics only, no error
        HotStore(settings).init()
        written = sampler.sample_once()
        written_again = sampler.sample_once()
    finally:
        sampler.close()

    assert m.value("tickvault_consumer_lag", group="hot") == 20
    assert m.value("tickvault_consumer_pending", group="hot") == 6
    assert m.value("tickvault_stream_entries") == 30
    assert m.value("tickvault_dlq_entries") == 2
    assert m.value("tickvault_redis_memory_bytes") > 0
    assert 0 < m.value("tickvault_host_memory_used_percent") <= 100
    assert m.value("tickvault_process_rss_bytes") > 10_000_000
    assert written > 30 and samples == [0, written, written_again]

    with psycopg.connect(settings.pg_dsn) as conn:
        rows = conn.execute(
            f'SELECT name, labels, value FROM "{settings.pg_schema}".metrics ORDER BY ts, name'
        ).fetchall()
        sample_times = conn.execute(f'SELECT count(DISTINCT ts) FROM "{settings.pg_schema}".metrics').fetchone()[0]
    assert len(rows) == written + written_again
    assert sample_times == 2
    by_key = {(name, json.dumps(labels, sort_keys=True)): value for name, labels, value in rows}
    assert by_key[("tickvault_consumer_pending", '{"group": "hot"}')] == 6
    assert by_key[("tickvault_dlq_entries", "{}")] == 2
    assert by_key[("tickvault_ingest_rows_total", '{"group": "hot"}')] == 100
    assert any(name == "tickvault_host_cpu_percent" for name, _ in by_key)


def test_sampler_never_creates_tables_in_an_uninitialised_schema(settings: Settings) -> None:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{settings.pg_schema}"')
    sampler = MetricsSampler(PipelineMetrics(settings), settings)
    try:
        assert sampler.sample_once() == 0
    finally:
        sampler.close()
    with psycopg.connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"{settings.pg_schema}.metrics",)).fetchone()[0] is None


def test_sampler_survives_a_down_database(settings: Settings) -> None:
    down = settings.model_copy(update={"pg_url": "postgresql://postgres@127.0.0.1:1/postgres"})
    m = PipelineMetrics(down)
    sampler = MetricsSampler(m, down, redis_client=None, writer=MetricsWriter(down))
    assert sampler.sample_once() == 0
    assert sampler.samples_written == 0
    assert m.value("tickvault_metrics_sample_seconds") > 0  # the failed sample was still timed


def test_endpoint_serves_the_series() -> None:
    settings = Settings()  # no server: the metrics live in memory
    m = PipelineMetrics(settings)
    m.observe_commit(_commit("hot", _batch(10, datetime.now(UTC)), time.time()))
    m.set_component("archiver-hot", True)
    m.record_job("reconcile", True, 1.5, {"repaired_ticks": 7})
    m.sample(None)
    server = serve(m, "127.0.0.1", 0)
    try:
        port = server.server_port
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    for series in (
        'tickvault_ingest_rows_total{group="hot"} 10.0',
        'tickvault_component_up{component="archiver-hot"} 1.0',
        'tickvault_job_result{field="repaired_ticks",job="reconcile"} 7.0',
        'tickvault_e2e_latency_histogram_seconds_bucket{group="hot",le="+Inf"} 10.0',
        "tickvault_host_cpu_percent",
        'tickvault_batch_write_seconds{quantile="0.5",sink="hot"}',
    ):
        assert series in body, series


def test_window_is_bounded() -> None:
    from tickvault.ops.metrics import _Window

    w = _Window(cap=1000)
    w.add(np.arange(5000, dtype=float))
    w.add(np.arange(10, dtype=float))
    taken = w.take()
    assert 0 < taken.size <= 1000
    assert taken.min() == 0 and taken.max() >= 4000  # strided, not truncated
    assert w.take().size == 0
