"""What watching costs: archiver throughput with and without the metrics attached.

    python bench/bench_metrics.py [--pg URL] [--redis URL] [--ticks 200000] [--rounds 3] [--interval 1]

For each sink (hot: PostgreSQL mode; cold: the DuckLake lake) the same simulated ticks are
archived from a fresh stream, alternately bare and with what `tickvault run` attaches (the
commit observer, the per-read heartbeat, and the sampler thread writing to the metrics table
every --interval seconds — 10x more often than the default). Reported: the median of each,
the overhead, and the direct costs (observer per batch, one sample) that bound it.

Uses its own schemas / stream keys / lake directories (bench_metrics_*) and removes them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psycopg
import redis

from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.dev.simulate import generate_day, publish
from tickvault.ops.metrics import MetricsSampler, PipelineMetrics
from tickvault.ops.run import ArchiverRunnable
from tickvault.services.archiver import Commit

DAY = date(2026, 11, 25)


def cleanup(s: Settings, client: redis.Redis) -> None:
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{s.pg_schema}" CASCADE')
    client.delete(s.stream, s.dlq_stream)
    shutil.rmtree(s.lake_dir, ignore_errors=True)


def timed(fn, spent: list[float], clock=time.perf_counter):
    """``fn`` that adds its own duration on ``clock`` to ``spent[0]``."""

    def wrapper(*args, **kwargs):
        started = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[0] += clock() - started

    return wrapper


def one_run(base: Settings, group: str, table, with_metrics: bool, interval: float, run_id: int,
            client: redis.Redis) -> tuple[float, float]:
    """(ticks/s, share of the run spent on metrics: the observer's time on the archiver thread,
    which delays ingest directly, plus the sampler thread's CPU time, which competes for a core
    and the GIL; its waits on Redis/PostgreSQL cost the archiver nothing)."""
    s = base.model_copy(update={
        "pg_schema": f"bench_metrics_{run_id}", "stream": f"bench_metrics:{run_id}:ticks",
        "lake_dir": base.lake_dir / f"run{run_id}", "metrics_interval_s": interval,
    })
    cleanup(s, client)
    try:
        from tickvault.stores.hot import HotStore

        HotStore(s).init()  # the metrics table, and the hot schema for both sinks alike
        publish(Publisher(client, s.stream), table)
        metrics = PipelineMetrics(s)
        runnable = ArchiverRunnable(s, group, metrics, consumer=f"bench-{group}")
        if not with_metrics:  # bare: undo what ArchiverRunnable attached
            runnable.archiver.observers.clear()
            del runnable.archiver.consumer.read  # the instance attribute; the class's read is back
        runnable.archiver.store.init()
        runnable.archiver.consumer.ensure_group()
        sampler = MetricsSampler(metrics, s, redis_client=redis.Redis.from_url(s.redis_dsn, decode_responses=True))
        spent = [0.0]
        if with_metrics:
            runnable.archiver.observers[:] = [timed(o, spent) for o in runnable.archiver.observers]
            sampler.sample_once = timed(sampler.sample_once, spent, time.thread_time)  # type: ignore[method-assign]
        thread = threading.Thread(target=sampler.run) if with_metrics else None
        started = time.perf_counter()
        if thread:
            thread.start()
        runnable.archiver.run_until_idle(idle_reads=1)
        seconds = time.perf_counter() - started
        if thread:
            sampler.stop()
            thread.join()
        sampler.close()
        runnable.close()
        return table.num_rows / seconds, spent[0] / seconds
    finally:
        cleanup(s, client)


def direct_costs(base: Settings, table, batch: int) -> tuple[float, float]:
    """(observer seconds per batch of ``batch`` ticks, seconds per sample without the DB write)."""
    metrics = PipelineMetrics(base)
    part = table.slice(0, batch)
    n = 200
    started = time.perf_counter()
    for _ in range(n):
        metrics.observe_commit(Commit("hot", batch, batch, batch, 0, 0.01, time.time(), part))
    per_batch = (time.perf_counter() - started) / n
    client = redis.Redis.from_url(base.redis_dsn, decode_responses=True)
    started = time.perf_counter()
    for _ in range(20):
        metrics.sample(client)
        metrics.table_rows()
    per_sample = (time.perf_counter() - started) / 20
    client.close()
    return per_batch, per_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0, help="sampler interval in seconds during the runs")
    parser.add_argument("--groups", default="hot,cold")
    args = parser.parse_args()

    lake_root = Path(tempfile.mkdtemp(prefix="bench_metrics_"))
    base = Settings(pg_url=args.pg, redis_url=args.redis, hot_mode="postgres", lake_dir=lake_root)
    client = redis.Redis.from_url(args.redis, decode_responses=True)
    table = generate_day(DAY, symbols=40, ticks=args.ticks, seed=5)
    received = table.column("ts")  # a realistic received_at, so latency is really computed
    table = table.set_column(table.schema.get_field_index("received_at"), "received_at", received)
    print(f"{args.ticks:,} ticks, {args.rounds} rounds per variant, sampler every {args.interval:g}s")
    run_id = 0
    try:
        for group in args.groups.split(","):
            bare, watched, shares = [], [], []
            for _ in range(args.rounds):
                for with_metrics in (False, True):
                    run_id += 1
                    rate, share = one_run(base, group, table, with_metrics, args.interval, run_id, client)
                    (watched if with_metrics else bare).append(rate)
                    if with_metrics:
                        shares.append(share)
            b, w = statistics.median(bare), statistics.median(watched)
            print(f"{group:>4}: bare {b:>10,.0f} ticks/s   with metrics {w:>10,.0f} ticks/s   "
                  f"difference {100 * (b - w) / b:+.1f}%   (runs: bare {[round(x) for x in bare]}, with {[round(x) for x in watched]})")
            print(f"      metrics cost (observer time + sampler CPU) / run time: median {100 * statistics.median(shares):.2f}% "
                  f"(runs {[round(100 * x, 2) for x in shares]})")
        batch = base.hot_batch_size
        per_batch, per_sample = direct_costs(base, table, batch)
        print(f"observer: {per_batch * 1e6:,.0f} us per {batch}-tick batch = {per_batch / batch * 1e9:,.0f} ns/tick; "
              f"one sample (Redis, host, percentiles, rows): {per_sample * 1e3:,.1f} ms")
        print(f"  bound at 200k ticks/s: observer {per_batch / batch * 200_000 * 100:.2f}% of a core, "
              f"sampler {per_sample / 10 * 100:.3f}% at the default 10 s interval")
    finally:
        client.close()
        shutil.rmtree(lake_root, ignore_errors=True)


if __name__ == "__main__":
    main()
