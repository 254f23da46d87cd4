"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os

from tickvault.core.config import Settings


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
