"""Scale-out ingest: ticks/s with 1, 2 and 4 cold archiver processes on the PostgreSQL lake catalog
with data on S3, and with 1 and 2 archiver processes per group on a sharded stream (Redis Cluster),
as ratios of the same run.

    python bench/bench_scale.py --s3-endpoint 127.0.0.1:8333 --s3-key K --s3-secret S [--bucket lake]
        [--cluster redis://127.0.0.1:7000] [--pg URL] [--redis URL] [--ticks 200000] [--shards 8]

Each configuration gets a fresh stream key, catalog schema, S3 prefix and hot schema; the day is
published first, and the time runs from the moment it becomes deliverable to the ready archivers
until every group has acknowledged it. Everything it creates is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg
from pydantic import SecretStr

from tickvault.core.config import Settings
from tickvault.core.sharding import publisher_for, shard_streams, stream_client
from tickvault.core.stream import group_info
from tickvault.dev.simulate import generate_day, publish
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 20)


def env_of(s: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    values = {"pg_url": s.pg_dsn, "redis_url": s.redis_dsn, "pg_schema": s.pg_schema, "stream": s.stream, "lake_dir": str(s.lake_dir),
              "hot_mode": "postgres", "lake_catalog": s.lake_catalog, "lake_catalog_schema": s.lake_catalog_schema,
              "lake_data": s.lake_data, "s3_endpoint": s.s3_endpoint, "s3_key_id": s.s3_key_id, "s3_url_style": s.s3_url_style,
              "s3_use_ssl": str(s.s3_use_ssl).lower(), "redis_cluster": str(s.redis_cluster).lower(),
              "stream_shards": str(s.stream_shards), "claim_idle_ms": "5000"}
    env.update({f"TICKVAULT_{k.upper()}": v for k, v in values.items() if v is not None})
    if s.s3_secret is not None:
        env["TICKVAULT_S3_SECRET"] = s.s3_secret.get_secret_value()
    return env


def measure(s: Settings, which: str, processes: int, table, log_dir: Path) -> float:
    """Seconds from the moment the whole (already published) day becomes deliverable until every
    group of ``which`` acknowledged it: the groups are created at the stream's end, the archivers
    started and ready, then every group is set back to the start at once (so neither publishing
    nor process start-up is timed)."""
    groups = ("hot", "cold") if which == "all" else (which,)
    for store in ([HotStore(s)] if "hot" in groups else []) + ([Lake(s)] if "cold" in groups else []):
        store.init()
        store.close()
    client = stream_client(s)
    publish(publisher_for(s, client), table, chunk=1000)
    for key in shard_streams(s):
        for group in groups:
            client.xgroup_create(key, group, id="$", mkstream=True)
    logs = [log_dir / f"{s.stream.replace(':', '_')}-{n}.log" for n in range(processes)]
    procs = []
    for n, log in enumerate(logs):
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "tickvault.cli", "archive", which, "--no-sync", "--consumer", f"bench{n}"],
                                          env=env_of(s), stdout=out, stderr=subprocess.STDOUT))
    started_lines = len(groups) * s.stream_shards
    try:
        while not all(log.read_text(errors="replace").count("started (stream") >= started_lines for log in logs):
            time.sleep(0.1)
        started = time.perf_counter()
        for key in shard_streams(s):
            for group in groups:
                client.xgroup_setid(key, group, id="0")
        while True:
            infos = [group_info(client, key) for key in shard_streams(s)]
            if all(info[g]["lag"] == 0 and info[g]["pending"] == 0 for info in infos for g in groups):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        for key in shard_streams(s):
            client.delete(key)
        return seconds
    finally:
        client.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=120)


def drop(s: Settings) -> None:
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        for schema in (s.pg_schema, s.lake_catalog_schema):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--s3-endpoint", required=True)
    parser.add_argument("--s3-key", required=True)
    parser.add_argument("--s3-secret", required=True)
    parser.add_argument("--bucket", default="lake")
    parser.add_argument("--cluster", help="a Redis Cluster node URL: also measure the sharded stream")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--ticks", type=int, default=200_000)
    args = parser.parse_args()
    table = generate_day(DAY, symbols=20, ticks=args.ticks, seed=1)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))

    def settings(**update: object) -> Settings:
        run = uuid.uuid4().hex[:8]
        base = Settings(pg_url=args.pg, redis_url=args.redis, pg_schema=f"bench_scale_{run}", stream=f"bench:scale:{run}",
                        lake_dir=work / run, hot_mode="postgres", lake_catalog=args.pg, lake_catalog_schema=f"bench_lake_{run}",
                        lake_data=f"s3://{args.bucket}/bench-{run}", s3_endpoint=args.s3_endpoint, s3_key_id=args.s3_key,
                        s3_secret=SecretStr(args.s3_secret), s3_url_style="path", s3_use_ssl=False)
        return base.model_copy(update=update)

    print(f"{args.ticks} ticks, PostgreSQL catalog + S3 ({args.s3_endpoint}); every configuration on fresh keys")
    rates: dict[str, float] = {}
    for processes in (1, 2, 4):
        s = settings()
        try:
            rates[f"cold x{processes}"] = args.ticks / measure(s, "cold", processes, table, work)
        finally:
            drop(s)
    if args.cluster:
        for processes in (1, 2):
            s = settings(redis_url=args.cluster, redis_cluster=True, stream_shards=args.shards)
            try:
                rates[f"sharded {args.shards}, all x{processes}"] = args.ticks / measure(s, "all", processes, table, work)
            finally:
                drop(s)
    for name, value in rates.items():
        base = rates["cold x1"] if name.startswith("cold") else rates[f"sharded {args.shards}, all x1"]
        print(f"{name:<22} {value:>10,.0f} ticks/s   x{value / base:.2f}")


if __name__ == "__main__":
    main()
