"""Open DuckDB with the DuckLake catalog attached, and retry what SQLite refuses.

On one machine the catalog is a SQLite file shared by the archiver (writer) and any number of readers in
other processes. With SQLite's own busy timeout the ducklake extension waits in whole
seconds on every lock collision, so the catalog is opened in WAL mode with
META_BUSY_TIMEOUT 0 and every statement that touches it (ATTACH, reads, commits) is
retried here with a short jittered backoff instead (FINDINGS.md: DuckLake with a second
process reading). A PostgreSQL catalog (``location.py``) has no such locks, but commits of
two transactions can conflict; those errors are retried the same way.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import psycopg
from duckdb_extensions import import_extension

from ...core.errors import ConfigError, LakeLocked, StoreUnavailable
from ..sqlfiles import load
from .location import CATALOG_FILE, LakeLocation

log = logging.getLogger(__name__)

T = TypeVar("T")

ALIAS = "lake"
LOCK_RETRY_SECONDS = 30.0  # give up (and raise) after this long of continuous lock collisions

_LOCK_MARKERS = ("database is locked", "database table is locked", "sqlite_busy", "busy")
#: commit conflicts on a PostgreSQL catalog (another writer's snapshot, compaction beside a prune):
#: the whole transaction is run again, its anti-join included
_CONFLICT_MARKERS = ("failed to commit ducklake transaction", "transaction conflict")


def is_lock_error(exc: BaseException) -> bool:
    """A collision with another process on the catalog: retrying the whole transaction is safe."""
    text = str(exc).lower()
    return any(marker in text for marker in _LOCK_MARKERS + _CONFLICT_MARKERS)


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
    """The SQLite catalog file of a lake on one machine."""
    return Path(lake_dir) / CATALOG_FILE


def attach_sql(where: Path | LakeLocation, alias: str = ALIAS, read_only: bool = False) -> str:
    """The ATTACH statement that opens this lake (also what docs/lake.md tells notebook users)."""
    return _location(where).attach_sql(alias, read_only)


def lake_exists(where: Path | LakeLocation) -> bool:
    """Whether the lake's catalog exists (a file, or the ducklake tables in the catalog schema)."""
    location = _location(where)
    if location.catalog_url is None:
        return location.catalog_file.exists()
    try:
        with psycopg.connect(location.catalog_url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(load(__package__, "catalog.sql")["catalog_exists"].postgres(),
                               {"table": f"{location.catalog_schema}.ducklake_metadata"}).fetchone()
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(
            f"the lake catalog's PostgreSQL is unreachable ({_first(exc)}); check TICKVAULT_LAKE_CATALOG and that the server is up"
        ) from None
    return bool(row and row[0])


def _location(where: Path | LakeLocation) -> LakeLocation:
    return where if isinstance(where, LakeLocation) else LakeLocation(Path(where))


def load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """ducklake + sqlite from the PyPI wheels; never try to download anything."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # never draw bars into archiver logs
    import_extension("ducklake", con=con)
    import_extension("sqlite", con=con)


def load_scale_extensions(con: duckdb.DuckDBPyConnection, location: LakeLocation) -> None:
    """postgres_scanner for a PostgreSQL catalog, httpfs for data on S3 (the [scale] extra)."""
    needed = (["postgres_scanner"] if location.on_postgres else []) + (["httpfs"] if location.on_s3 else [])
    for name in needed:
        try:
            import_extension(name, con=con)
        except Exception as exc:  # noqa: BLE001 - any failure means the wheel is missing or broken
            raise ConfigError(
                f"the lake at {location.describe()} needs DuckDB's {name} extension: pip install 'tickvault[scale]' ({_first(exc)})"
            ) from None


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_connection(where: Path | LakeLocation, alias: str = ALIAS, read_only: bool = False, threads: int | None = None,
                    memory_limit_mb: int | None = None, override_data_path: bool = False) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with the lake attached as ``alias``; ``threads`` and
    ``memory_limit_mb`` bound what it may use (DuckDB's defaults: every core, 80 % of RAM)."""
    location = _location(where)
    if location.local_data_dir is not None:
        location.local_data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        load_extensions(con)
        load_scale_extensions(con, location)
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit_mb:
            con.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
        secret = location.secret_sql()
        if secret is not None:
            try:
                con.execute(secret)
            except duckdb.Error:  # the message could quote the statement, and with it the secret
                raise ConfigError("the S3 settings of the lake are refused by DuckDB; check TICKVAULT_S3_* (region, url style)") from None
        statement = location.attach_sql(alias, read_only, override_data_path)

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

        retry_locked(f"attach the lake at {location.describe()}", attach)
    except BaseException:
        con.close()
        raise
    return con
