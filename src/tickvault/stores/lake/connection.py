"""Open DuckDB with the DuckLake catalog attached, and retry what SQLite refuses.

The catalog is a SQLite file shared by the archiver (writer) and any number of readers in
other processes. With SQLite's own busy timeout the ducklake extension waits in whole
seconds on every lock collision, so the catalog is opened in WAL mode with
META_BUSY_TIMEOUT 0 and every statement that touches it (ATTACH, reads, commits) is
retried here with a short jittered backoff instead (FINDINGS.md: DuckLake with a second
process reading).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
from duckdb_extensions import import_extension

from ...core.errors import LakeLocked

log = logging.getLogger(__name__)

T = TypeVar("T")

CATALOG_FILE = "catalog.sqlite"
DATA_DIR = "data"
ALIAS = "lake"
LOCK_RETRY_SECONDS = 30.0  # give up (and raise) after this long of continuous lock collisions

_LOCK_MARKERS = ("database is locked", "database table is locked", "sqlite_busy", "busy")


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _LOCK_MARKERS)


def retry_locked(what: str, fn: Callable[[], T], budget_s: float = LOCK_RETRY_SECONDS) -> T:
    """Run ``fn``; on a catalog lock collision wait a few ms and run it again.

    Any other error propagates at once. After ``budget_s`` of collisions raise
    LakeLocked so the archiver's own backoff (and its log line) takes over.
    """
    deadline = time.monotonic() + budget_s
    delay = 0.002
    attempts = 0
    while True:
        try:
            return fn()
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise
            attempts += 1
            if time.monotonic() >= deadline:
                raise LakeLocked(
                    f"lake catalog locked for {budget_s:.0f}s while trying to {what} ({attempts} attempts); "
                    "another process holds it — retry, or stop long-running lake queries"
                ) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)


def catalog_path(lake_dir: Path) -> Path:
    return Path(lake_dir) / CATALOG_FILE


def data_path(lake_dir: Path) -> Path:
    return Path(lake_dir) / DATA_DIR


def attach_sql(lake_dir: Path, alias: str = ALIAS, read_only: bool = False) -> str:
    """The ATTACH statement that opens this lake (also what docs/lake.md tells notebook users)."""
    catalog = str(catalog_path(lake_dir).resolve()).replace("'", "''")
    data = (str(data_path(lake_dir).resolve()) + "/").replace("'", "''")
    options = [
        f"DATA_PATH '{data}'",
        "META_JOURNAL_MODE 'WAL'",
        "META_BUSY_TIMEOUT 0",
    ]
    if read_only:
        options.append("READ_ONLY")
    return f"ATTACH 'ducklake:sqlite:{catalog}' AS {alias} ({', '.join(options)})"


def load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """ducklake + sqlite from the PyPI wheels; never try to download anything."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # never draw bars into archiver logs
    import_extension("ducklake", con=con)
    import_extension("sqlite", con=con)


def open_connection(lake_dir: Path, alias: str = ALIAS, read_only: bool = False, threads: int | None = None,
                    memory_limit_mb: int | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with the lake attached as ``alias``; ``threads`` and
    ``memory_limit_mb`` bound what it may use (DuckDB's defaults: every core, 80 % of RAM)."""
    lake_dir = Path(lake_dir)
    data_path(lake_dir).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        load_extensions(con)
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit_mb:
            con.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
        statement = attach_sql(lake_dir, alias, read_only)

        def attach() -> None:
            try:
                con.execute(statement)
            except duckdb.Error:
                # a half-done ATTACH leaves the alias registered on some versions
                try:
                    con.execute(f"DETACH DATABASE IF EXISTS {alias}")
                except duckdb.Error:
                    pass
                raise

        retry_locked(f"attach the lake at {lake_dir}", attach)
    except BaseException:
        con.close()
        raise
    return con
