"""The Lake: DuckLake (SQLite catalog + zstd Parquet files) as the cold tick store.

Writes are idempotent by natural key (an anti-join against the batch's own day, symbols
and time range) and commit the archiver checkpoint in the same DuckLake transaction, so
a batch is either wholly visible with its checkpoint or not at all. Every commit is a
snapshot: ``read_ticks(as_of=...)`` reads the lake as it was (reproducible backtests).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ...core.config import Settings
from ...core.wire import TICK_SCHEMA, dedupe, kst_date
from . import sql
from .connection import ALIAS, LOCK_RETRY_SECONDS, catalog_path, is_lock_error, open_connection, retry_locked
from .writelock import writer_lock

if TYPE_CHECKING:
    from .sink import LakeSink

log = logging.getLogger(__name__)

AsOf = int | datetime | None
T = TypeVar("T")


class LakeStorageError(RuntimeError):
    """The lake directory cannot take more data (disk full, quota, file-size limit)."""


def storage_problem(directory: Path) -> str | None:
    """Why a file cannot be written under ``directory`` right now, or None.

    DuckDB and SQLite report a full disk as a bare "disk I/O error"; a 64 KiB probe
    write turns that into the operating system's reason (ENOSPC, EDQUOT, EFBIG).
    """
    probe = Path(directory) / f".tickvault-space-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as out:
            out.write(bytes(65536))
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        return f"{exc.strerror or exc} (errno {exc.errno})"
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return None


def conform(table: pa.Table) -> pa.Table:
    """The batch as exactly TICK_SCHEMA, or a ValueError saying which column is wrong."""
    missing = [name for name in TICK_SCHEMA.names if name not in table.column_names]
    if missing:
        raise ValueError(f"tick batch lacks column(s) {', '.join(missing)}; build it with model.TICK_SCHEMA")
    columns = []
    for field in TICK_SCHEMA:
        column = table.column(field.name)
        if not field.nullable and column.null_count:
            raise ValueError(f"tick batch has {column.null_count} null(s) in {field.name}, which must be set")
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"tick batch column {field.name}: cannot store {column.type} as {field.type} ({exc})") from None
    return pa.Table.from_arrays(columns, schema=TICK_SCHEMA)


def as_tick_schema(table: pa.Table) -> pa.Table:
    """A DuckDB result (same column names) cast to TICK_SCHEMA, nullability included."""
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in TICK_SCHEMA], schema=TICK_SCHEMA)


def at_clause(as_of: AsOf) -> str:
    """DuckLake time travel: a snapshot id or an instant (aware datetime)."""
    if as_of is None:
        return ""
    if isinstance(as_of, bool) or not isinstance(as_of, int | datetime):
        raise TypeError(f"as_of must be a snapshot id (int) or a datetime, got {type(as_of).__name__}")
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            raise ValueError("as_of datetime needs a time zone (e.g. +09:00)")
        return "AT (TIMESTAMP => $as_of)"
    return "AT (VERSION => $as_of)"


class Lake:
    """The cold store. One DuckDB connection per Lake, guarded for use from several threads."""

    name = "cold"

    def __init__(self, settings: Settings, lock_budget_s: float = LOCK_RETRY_SECONDS) -> None:
        self.settings = settings
        self.lock_budget_s = lock_budget_s  # how long lock collisions are retried before raising
        self.lake_dir = Path(settings.lake_dir)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._mutex = threading.RLock()
        self._initialised = False

    # --- connections
    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A new DuckDB connection with the lake attached as ``lake`` (caller closes it).

        Reads on it can still meet a locked catalog while the archiver commits; wrap
        them in ``tickvault.lake.retry_locked``.
        """
        return open_connection(self.lake_dir, ALIAS, read_only=read_only)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if catalog_path(self.lake_dir).exists():
                self._con = open_connection(self.lake_dir)
            else:  # the first ATTACH creates the catalog: one process at a time
                with writer_lock(self.lake_dir):
                    self._con = open_connection(self.lake_dir)
        return self._con

    def _discard_connection(self) -> None:
        """After an unexpected error start afresh: a DuckDB connection may be invalidated."""
        if self._con is not None:
            try:
                self._con.close()
            except duckdb.Error:
                pass
            self._con = None

    def _run(self, what: str, fn: Callable[[duckdb.DuckDBPyConnection], T], *, write: bool = False) -> T:
        """Run ``fn(con)`` (a transaction when ``write``), retrying catalog lock collisions."""

        def attempt() -> T:
            con = self._connection()
            if not write:
                return fn(con)
            con.execute("BEGIN TRANSACTION")
            try:
                result = fn(con)
                con.execute("COMMIT")
                return result
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise

        with self._mutex:
            try:
                return retry_locked(what, attempt, self.lock_budget_s)
            except duckdb.Error as exc:
                if not is_lock_error(exc):
                    self._discard_connection()
                raise

    # --- schema
    def init(self) -> None:
        """Create the catalog, tables and layout options; idempotent.

        An existing, complete lake is recognised without the writer lock, so readers
        never wait for the archiver here.
        """
        with self._mutex:
            if self._initialised:
                return
            self.lake_dir.mkdir(parents=True, exist_ok=True)
            if not self._is_complete():
                with writer_lock(self.lake_dir):
                    self._create()
            self._initialised = True

    def _is_complete(self) -> bool:
        def check(con: duckdb.DuckDBPyConnection) -> bool:
            tables = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = $db AND table_name IN ('ticks', 'ingest_checkpoint')",
                {"db": ALIAS},
            ).fetchone()[0]
            return tables == 2 and bool(con.execute(sql.load("layout_done")).fetchone()[0])

        return self._run("look up the lake tables", check)

    def _create(self) -> None:
        """Under the writer lock: tables in one transaction, then the layout options, which
        cannot share it; the last option marks the layout complete, so an init interrupted
        half-way is redone."""
        if self._is_complete():
            return
        self._run("create the lake tables", lambda con: [con.execute(s) for s in sql.statements("schema")], write=True)
        for statement in sql.statements("layout"):
            self._run("set the lake layout", lambda con, s=statement: con.execute(s))
        log.info("lake ready at %s", self.lake_dir)

    # --- writes
    def _insert_new(self, con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
        low, high = pc.min_max(batch.column("ts")).values()
        params = {
            "first_day": kst_date(low.as_py()),
            "last_day": kst_date(high.as_py()),
            "first_ts": low.as_py(),
            "last_ts": high.as_py(),
        }
        con.register("tv_batch", batch)
        try:
            return int(con.execute(sql.load("insert_new"), params).fetchone()[0])
        finally:
            con.unregister("tv_batch")

    def write(self, batch: pa.Table, checkpoint: tuple[str, str, str] | None = None) -> int:
        """Add the batch's new ticks (and the checkpoint) in one DuckLake transaction.

        Returns rows added. Raises on any failure (lock budget exhausted, disk full);
        nothing of the batch is then visible, and re-running the call is safe.
        """
        batch = dedupe(conform(batch))
        if batch.num_rows == 0 and checkpoint is None:
            return 0
        self.init()

        def transaction(con: duckdb.DuckDBPyConnection) -> int:
            added = self._insert_new(con, batch) if batch.num_rows else 0
            if checkpoint is not None:
                stream, group, last_id = checkpoint
                con.execute(sql.load("set_checkpoint"), {"stream": stream, "group": group, "last_id": last_id})
            return added

        with writer_lock(self.lake_dir):
            try:
                return self._run(f"commit {batch.num_rows} ticks", transaction, write=True)
            except duckdb.Error as exc:
                problem = storage_problem(self.lake_dir)
                if problem is None:
                    raise
                raise LakeStorageError(
                    f"cannot write to the lake at {self.lake_dir}: {problem} — free space there (or lift the file-size "
                    f"limit); nothing of this batch was committed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                ) from exc

    def upsert(self, ticks: pa.Table) -> int:
        """Insert ticks not yet stored (reconcile, recovery, rebuild). Returns rows added."""
        return self.write(ticks)

    def sink(self) -> LakeSink:
        from .sink import LakeSink

        return LakeSink(self)

    # --- reads
    def checkpoint(self, stream: str, group: str) -> str | None:
        """The last stream id committed for (stream, group), or None."""
        self.init()
        row = self._run("read the checkpoint", lambda con: con.execute(
            sql.load("get_checkpoint"), {"stream": stream, "group": group}).fetchone())
        return row[0] if row else None

    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None, as_of: AsOf = None) -> pa.Table:
        """Ticks with start <= ts < end as TICK_SCHEMA, ordered by symbol, trade date, cum_volume.

        ``as_of``: a snapshot id (``snapshot_id()`` at some moment) or an aware datetime;
        the lake is read as it was then.
        """
        for name, value in (("start", start), ("end", end)):
            if value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. +09:00)")
        self.init()
        params: dict[str, Any] = {
            "first_day": kst_date(start),
            "last_day": kst_date(end),
            "start": start,
            "end": end,
        }
        clause = at_clause(as_of)
        if clause:
            params["as_of"] = as_of
        symbol_filter = ""
        if symbols is not None:
            wanted = sorted(set(symbols))
            if not wanted:
                return TICK_SCHEMA.empty_table()
            params.update({f"symbol_{i}": s for i, s in enumerate(wanted)})
            symbol_filter = "AND symbol IN (" + ", ".join(f"$symbol_{i}" for i in range(len(wanted))) + ")"
        query = sql.load("read_ticks").replace("{at}", clause).replace("{symbols}", symbol_filter)
        try:
            table = self._run("read ticks", lambda con: con.execute(query, params).to_arrow_table())
        except duckdb.InvalidInputException as exc:
            if "No snapshot found" in str(exc):
                raise ValueError(
                    f"the lake has no snapshot at {as_of!r} (before its first commit, or a snapshot id not yet "
                    "written); use a later time or a snapshot id from Lake.snapshot_id()"
                ) from None
            raise
        return as_tick_schema(table)

    def count_ticks(self, day: date) -> int:
        """Ticks of one KST trading date."""
        self.init()
        return int(self._run("count ticks", lambda con: con.execute(sql.load("count_day"), {"day": day}).fetchone()[0]))

    def snapshot_id(self) -> int:
        """The id of the newest committed snapshot (pass it as ``as_of`` to read that state)."""
        self.init()
        return int(self._run("read the snapshot id", lambda con: con.execute(
            f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()[0]))

    def file_count(self, day: date | None = None) -> int:
        """Parquet data files of the current snapshot (of one KST date if given)."""
        self.init()

        def count(con: duckdb.DuckDBPyConnection) -> int:
            files = con.execute(f"SELECT data_file FROM ducklake_list_files('{ALIAS}', 'ticks')").fetchall()
            if day is None:
                return len(files)
            marker = f"trade_date={day.isoformat()}"
            return sum(1 for (path,) in files if marker in path)

        return int(self._run("list data files", count))

    # --- maintenance
    def compact(self, day: date) -> dict[str, int]:
        from .compact import compact_day

        return compact_day(self, day)

    def close(self) -> None:
        with self._mutex:
            self._discard_connection()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
