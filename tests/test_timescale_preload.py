"""Issue 13.13: `init` on a server where TimescaleDB is installed but not preloaded.

TimescaleDB is not installed on the test machines, so the state is made for real on a server
of the test's own (the embedded PostgreSQL 18): an extension named ``timescaledb`` becomes
available through ``extension_control_path``, and its script does what the real library does
when it is not in ``shared_preload_libraries`` — it ends the session from inside CREATE
EXTENSION (here a WARNING with the real message, then the server terminates the backend: a
FATAL that closes the connection). ``auto`` must fall back to PostgreSQL mode with one warning
naming shared_preload_libraries, ``timescaledb`` must fail with that one line, and the
session init holds its transaction on must be unaffected.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from tickvault.cli import cli

CONTROL = """comment = 'stand-in: installed but not preloaded'
default_version = '2.99.0'
relocatable = false
"""
SCRIPT = """DO $$
BEGIN
    RAISE WARNING 'extension "timescaledb" must be preloaded';
    PERFORM pg_terminate_backend(pg_backend_pid());
    PERFORM pg_sleep(10);
END
$$;
"""


@pytest.fixture
def unpreloaded(owned_pg: object) -> Iterator[str]:
    """The owned server's URL, with a ``timescaledb`` that is available but cannot load."""
    shared = Path(tempfile.mkdtemp(prefix="tickvault-ext-"))
    try:
        for where in (shared, shared / "extension"):  # PostgreSQL 18 appends "extension" to each entry
            where.mkdir(exist_ok=True)
            (where / "timescaledb.control").write_text(CONTROL)
            (where / "timescaledb--2.99.0.sql").write_text(SCRIPT)
            for path in (where, *where.iterdir()):
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(shared, 0o755)
        url = owned_pg.url  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET extension_control_path = '$system:{shared}'")
            conn.execute("SELECT pg_reload_conf()")
        with psycopg.connect(url) as conn:
            available = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        if available is None:
            pytest.skip("this PostgreSQL cannot list a stand-in extension (extension_control_path needs PostgreSQL 18)")
        yield url
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _env(url: str, mode: str, tmp_path: Path, schema: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TICKVAULT_")}
    env.update({"TICKVAULT_PG_URL": url, "TICKVAULT_HOT_MODE": mode, "TICKVAULT_PG_SCHEMA": schema,
                "TICKVAULT_LAKE_DIR": str(tmp_path / "lake")})
    return env


def test_init_auto_falls_back_to_postgres_mode_with_one_warning(unpreloaded: str, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    out = CliRunner().invoke(cli, ["init", "--no-cold"], env=_env(unpreloaded, "auto", tmp_path, "tv_auto"))
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output and "connection is closed" not in out.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "shared_preload_libraries" in warnings[0], warnings
    assert "mode postgres" in out.stdout
    with psycopg.connect(unpreloaded) as conn:
        assert conn.execute("SELECT value FROM tv_auto.hot_meta WHERE key = 'mode'").fetchone()[0] == "postgres"
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0] == 0
    again = CliRunner().invoke(cli, ["init", "--no-cold"], env=_env(unpreloaded, "auto", tmp_path, "tv_auto"))
    assert again.exit_code == 0, again.output  # recorded mode: no second attempt, no second warning
    assert "shared_preload_libraries" not in again.output


def test_init_timescaledb_mode_fails_with_one_line(unpreloaded: str, tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["init", "--no-cold"], env=_env(unpreloaded, "timescaledb", tmp_path, "tv_tsdb"))
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    lines = [line for line in out.stderr.splitlines() if line.startswith("tickvault:")]
    assert len(lines) == 1 and "shared_preload_libraries" in lines[0] and "TICKVAULT_HOT_MODE=postgres" in lines[0], out.stderr
    with psycopg.connect(unpreloaded) as conn:
        assert conn.execute("SELECT to_regnamespace('tv_tsdb')").fetchone()[0] is None  # nothing half-made
