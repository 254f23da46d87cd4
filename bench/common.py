"""Shared bench plumbing: isolated settings, data, timing, and the one-JSON-line result."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
import pyarrow as pa
import redis

from tickvault.core.config import Settings
from tickvault.core.stream import FrameLimits, Publisher
from tickvault.dev.simulate import publish

DAY = date(2026, 11, 20)
PG_URL = os.environ.get("TICKVAULT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TICKVAULT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TSDB_URL = os.environ.get("TICKVAULT_BENCH_TSDB_URL")  # a PostgreSQL with timescaledb: adds the TimescaleDB-mode hot bench


#: wire format -> function sending a TICK_SCHEMA table through a Publisher as fast as it can.
#: v1 = one stream entry per trade; v2 = frames of up to 1000 trades (the collectors' and
#: simulate's default). ingest.py (dual write) and day.py run once per format and report the
#: v2 / v1 ratio ("<bench>.v2_vs_v1_*").
WIRE_FORMATS: dict[str, Callable[[Publisher, pa.Table], object]] = {
    "v1": publish,
    "v2": lambda publisher, table: publish(publisher, table, frames=FrameLimits()),
}


@contextmanager
def isolated_settings(tag: str, **overrides: object) -> Iterator[Settings]:
    """Own schema, stream and lake dir, removed afterwards (benches never touch real data)."""
    run = uuid.uuid4().hex[:8]
    lake_dir = Path(tempfile.mkdtemp(prefix=f"tvbench-{tag}-"))
    fields: dict[str, object] = {
        "pg_url": PG_URL,
        "redis_url": REDIS_URL,
        "pg_schema": f"bench_{tag}_{run}",
        "stream": f"tvbench:{tag}:{run}:ticks",
        "lake_dir": lake_dir / "lake",
        "hot_mode": "postgres",
    }
    settings = Settings(**{**fields, **overrides})
    try:
        yield settings
    finally:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{settings.pg_schema}" CASCADE')
        client = redis.Redis.from_url(settings.redis_dsn)
        keys = list(client.scan_iter(match=f"tvbench:{tag}:{run}:*"))
        if keys:
            client.delete(*keys)
        client.close()
        shutil.rmtree(lake_dir, ignore_errors=True)


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def ratio(ours: float, raw: float) -> float:
    return round(ours / raw, 3) if raw else 0.0


def say(label: str, ours: float, raw: float | None = None, unit: str = "ticks/s") -> None:
    line = f"  {label:<46} {ours:>12,.0f} {unit}"
    if raw:
        line += f"   raw {raw:>12,.0f}   ratio {ours / raw:5.2f}"
    print(line, flush=True)


def emit(results: dict[str, object]) -> None:
    print(json.dumps(results, sort_keys=True), flush=True)
