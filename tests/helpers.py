"""Helpers shared by test modules (fixtures live in conftest.py, tick factories in factories.py)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import redis
from click.testing import CliRunner

from factories import DAY
from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.frames import entries_as_fields
from tickvault.core.wire import NATURAL_KEY, TICK_SCHEMA, UTC, parse_fields
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


def settings_env(settings: Settings, **override: str) -> dict[str, str]:
    """The TICKVAULT_* variables that make a CLI invocation use this test's isolated settings."""
    env = {
        "TICKVAULT_PG_URL": settings.pg_dsn,
        "TICKVAULT_REDIS_URL": settings.redis_dsn,
        "TICKVAULT_PG_SCHEMA": settings.pg_schema,
        "TICKVAULT_STREAM": settings.stream,
        "TICKVAULT_LAKE_DIR": str(settings.lake_dir),
        "TICKVAULT_HOT_MODE": settings.hot_mode,
    }
    scale = {"lake_catalog": settings.lake_catalog, "lake_data": settings.lake_data, "s3_endpoint": settings.s3_endpoint,
             "s3_key_id": settings.s3_key_id, "pg_read_url": settings.pg_read_url}
    env.update({f"TICKVAULT_{name.upper()}": value for name, value in scale.items() if value is not None})
    if settings.lake_catalog is not None:
        env["TICKVAULT_LAKE_CATALOG_SCHEMA"] = settings.lake_catalog_schema
    if settings.lake_data is not None:
        env.update({"TICKVAULT_S3_REGION": settings.s3_region, "TICKVAULT_S3_URL_STYLE": settings.s3_url_style,
                    "TICKVAULT_S3_USE_SSL": str(settings.s3_use_ssl).lower()})
    if settings.redis_cluster:
        env["TICKVAULT_REDIS_CLUSTER"] = "true"
    if settings.stream_shards != 1:
        env["TICKVAULT_STREAM_SHARDS"] = str(settings.stream_shards)
    if settings.s3_secret is not None:
        env["TICKVAULT_S3_SECRET"] = settings.s3_secret.get_secret_value()
    env.update(override)
    return env


def subprocess_env(settings: Settings, **override: str) -> dict[str, str]:
    """A whole environment for a child process: this process's, minus any TICKVAULT_* it
    carries (a developer's own settings must not leak in), plus ``settings_env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env.update(settings_env(settings, **override))
    return env


def drop_schema(url: str, schema: str, attempts: int = 5) -> None:
    """Drop a test schema. On TimescaleDB, unschedule its jobs first and retry: a policy job
    that the scheduler starts during the drop fails it with "tuple concurrently deleted" or
    a deadlock."""
    import time

    import psycopg

    for attempt in range(attempts):
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
                    conn.execute(
                        "SELECT delete_job(job_id) FROM timescaledb_information.jobs "
                        "WHERE hypertable_schema = %s OR proc_schema = %s", (schema, schema)
                    )
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        except (psycopg.errors.InternalError, psycopg.errors.DeadlockDetected):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def store_both(settings: Settings, hot_ticks: pa.Table, cold_ticks: pa.Table) -> None:
    """Initialise both stores and upsert into each its own version of the day."""
    hot = HotStore(settings)
    hot.init()
    hot.upsert(hot_ticks)
    hot.close()
    lake = Lake(settings)
    lake.init()
    lake.upsert(cold_ticks)
    lake.close()


def sort_key(table: pa.Table) -> pa.Table:
    return table.cast(TICK_SCHEMA).sort_by([(k, "ascending") for k in NATURAL_KEY])


def export(s: Settings, source: str, out: Path) -> pa.Table:
    """DAY read back from one store through `tickvault export`, the path an operator uses."""
    result = CliRunner().invoke(
        cli, ["export", "--source", source, "--date", DAY.isoformat(), "--out", str(out)], env=subprocess_env(s), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return pq.read_table(out)


def stream_entries(client: redis.Redis, stream: str) -> list[dict[str, str]]:
    """One v1 field dict per trade, whether it was published as a v1 entry or inside a v2 frame."""
    raw = client.execute_command("XRANGE", stream, "-", "+", NEVER_DECODE=True)
    return entries_as_fields((i.decode(), [part for kv in fields.items() for part in kv]) for i, fields in raw)


def key_of(fields: dict[str, str]) -> tuple[str, datetime, int]:
    tick = parse_fields(fields, datetime.now(UTC))
    return (tick.symbol, tick.ts, tick.cum_volume)


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def venue_key_of(fields: dict[str, str]) -> tuple[str, str, datetime, int]:
    tick = parse_fields(fields, datetime.now(UTC))
    return (tick.venue, tick.symbol, tick.ts, tick.cum_volume)


def in_a_gap(trade, gaps: list[dict[str, str]]) -> bool:
    """True when a stand-in ``Trade`` falls inside one of the recorded collector gaps of its
    venue (a gap record without a venue covers every venue)."""
    venue = getattr(trade, "venue", "KRX")
    for gap in gaps:
        start = datetime.fromisoformat(gap["start"]).replace(microsecond=0)
        end = datetime.fromisoformat(gap["end"])
        if start <= trade.ts <= end and trade.symbol in gap["symbols"].split(",") and gap.get("venue", venue) == venue:
            return True
    return False


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 180.0) -> None:
    """Poll ``check`` every 0.2 s until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# The broker stand-ins' app keys, and settings for a client of a stand-in at ``url``.
KIS_KEY, KIS_SECRET = "PSkisAppKey0123456789abcdef", "kisAppSecretZYXWVUT9876543210+/="
KW_KEY, KW_SECRET = "kwAppKey_4f1d2c3b", "kwSecretKey_9a8b7c6d"


def kis_settings(url: str, tmp_path: Path, **extra) -> Settings:
    return Settings(kis_appkey=KIS_KEY, kis_appsecret=KIS_SECRET, kis_base_url=url, broker_token_dir=tmp_path / "tokens",
                    lake_dir=tmp_path / "lake", **extra)


def kw_settings(url: str, tmp_path: Path, **extra) -> Settings:
    return Settings(kiwoom_appkey=KW_KEY, kiwoom_secretkey=KW_SECRET, kiwoom_base_url=url,
                    broker_token_dir=tmp_path / "tokens", lake_dir=tmp_path / "lake", **extra)
