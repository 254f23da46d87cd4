"""Issue 13.13 on a real TimescaleDB: the extension installed on the server but not preloaded.

That is the state right after installing the package (and on the CI machines): the
``timescaledb`` extension is listed as available, but CREATE EXTENSION makes the server end the
session because the library is not in ``shared_preload_libraries``. ``init`` in ``auto`` mode
falls back to PostgreSQL mode with one warning line and the archivers then write; in
``timescaledb`` mode it fails with that one line. Each test works in a database of its own, so
the shared server keeps no trace. Skipped where the extension is missing or already preloaded.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from factories import one_symbol_ticks
from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.wire import ticks_to_table
from tickvault.stores.hot.store import HotStore


@pytest.fixture
def unpreloaded_db(pg_url: str) -> Iterator[str]:
    """A fresh database on the shared server, where timescaledb is available but not preloaded."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    if available is None:
        pytest.skip("the test PostgreSQL has no timescaledb extension installed")
    if "timescaledb" in preload:
        pytest.skip("the test PostgreSQL preloads timescaledb: the unpreloaded state cannot be tried on it")
    name = f"tv_unpre_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(**{**conninfo_to_dict(pg_url), "dbname": name})
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(url: str, mode: str, tmp_path: Path) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TICKVAULT_")}
    env.update({"TICKVAULT_PG_URL": url, "TICKVAULT_HOT_MODE": mode, "TICKVAULT_PG_SCHEMA": "tv",
                "TICKVAULT_LAKE_DIR": str(tmp_path / "lake")})
    return env


def test_auto_mode_falls_back_to_postgres_and_archives(unpreloaded_db: str, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    out = CliRunner().invoke(cli, ["init", "--no-cold"], env=_env(unpreloaded_db, "auto", tmp_path))
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output and "connection is closed" not in out.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "shared_preload_libraries" in warnings[0], warnings
    with psycopg.connect(unpreloaded_db) as conn:
        assert conn.execute("SELECT value FROM tv.hot_meta WHERE key = 'mode'").fetchone()[0] == "postgres"
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0] == 0
    # the archivers' store opens in the recorded mode and writes (no retried `prepare`)
    settings = Settings(pg_url=unpreloaded_db, pg_schema="tv", hot_mode="auto", lake_dir=tmp_path / "lake")
    ticks = ticks_to_table(one_symbol_ticks(20))
    with HotStore(settings) as hot:
        hot.init()
        assert hot.mode == "postgres"
        assert hot.write(ticks) == 20
        assert hot.write(ticks) == 0
    with psycopg.connect(unpreloaded_db) as conn:
        assert conn.execute("SELECT count(*) FROM tv.ticks").fetchone()[0] == 20
        assert conn.execute("SELECT sum(trade_count) FROM tv.candles_1m").fetchone()[0] == 20


def test_timescaledb_mode_fails_with_one_line(unpreloaded_db: str, tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["init", "--no-cold"], env=_env(unpreloaded_db, "timescaledb", tmp_path))
    assert out.exit_code != 0, out.output
    assert "Traceback" not in out.output
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tickvault:"), out.stderr
    assert "shared_preload_libraries" in lines[0] and "TICKVAULT_HOT_MODE=postgres" in lines[0], lines[0]
    with psycopg.connect(unpreloaded_db) as conn:
        assert conn.execute("SELECT to_regnamespace('tv')").fetchone()[0] is None  # nothing half-made
