"""The Lake: DuckLake (SQLite catalog + zstd Parquet files) as the cold tick store.

Writes are idempotent by natural key (an anti-join against the batch's own day, symbols and
time range) and commit the stream position in the same DuckLake transaction, so a batch is
either wholly visible with its checkpoint or not at all. Every commit is a snapshot:
``read_ticks(as_of=...)`` reads the lake as it was (reproducible backtests). Every statement
lives in ``sql/*.sql``; driver errors leave this class as ``core.errors`` types.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ...core import bars
from ...core.adjustments import ADJUSTMENT_SCHEMA
from ...core.calendar import trading_date
from ...core.config import Settings
from ...core.errors import ConfigError, QueryError, StorageFull, StoreError, StoreNotInitialized, TickvaultError
from ...core.timeframe import Timeframe, parse_timeframe
from ...core.wire import KST, TICK_SCHEMA, Venue
from ..contract import Bounds, Break, KeyCopies, MinuteFingerprint, StoreName, StreamPosition, conform, report_conflicts, report_rejects
from ..sqlfiles import load
from .connection import ALIAS, LOCK_RETRY_SECONDS, is_lock_error, lake_exists, open_connection, retry_locked
from .location import LakeLocation
from .writelock import writer_lock

log = logging.getLogger(__name__)

AsOf = int | datetime | None
T = TypeVar("T")

#: The lake's schema this code writes: 1 = before venues (no version recorded), 2 = venue in the key.
SCHEMA_VERSION = 2

INTEGRITY_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("venue", pa.string()),
        ("symbol", pa.string()),
        ("ticks", pa.int64()),
        ("volume", pa.int64()),
        ("gaps", pa.int32()),
        ("missing_volume", pa.int64()),
        ("duplicates", pa.int64()),
        ("repaired_hot", pa.int64()),
        ("repaired_cold", pa.int64()),
        ("status", pa.string()),
        ("checked_at", pa.timestamp("us", tz="UTC")),
    ]
)
#: integrity columns whose change makes a rewrite worth a lake commit (checked_at alone is not)
INTEGRITY_COMPARED = ("ticks", "volume", "gaps", "missing_volume", "duplicates", "status")


def statement(file: str, name: str, **parts: str) -> str:
    """Statement ``name`` of ``sql/<file>.sql`` as DuckDB text."""
    return load(__package__, f"{file}.sql")[name].duckdb(**parts)


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


def as_tick_schema(table: pa.Table) -> pa.Table:
    """A DuckDB result (same column names) cast to TICK_SCHEMA, nullability included."""
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in TICK_SCHEMA], schema=TICK_SCHEMA)


def at_clause(as_of: AsOf) -> str:
    """DuckLake time travel: a snapshot id or an instant (aware datetime)."""
    if as_of is None:
        return ""
    if isinstance(as_of, bool) or not isinstance(as_of, int | datetime):
        raise QueryError(f"as_of must be a snapshot id (int) or a datetime, got {type(as_of).__name__}")
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            raise QueryError("as_of datetime needs a time zone (e.g. +09:00)")
        return "AT (TIMESTAMP => :as_of)"
    return "AT (VERSION => :as_of)"


def is_stale_inlining_error(exc: BaseException) -> bool:
    """DuckLake's error when a connection's cached catalog names inlined-data tables that a flush
    in another process has dropped (ducklake with DuckDB 1.5); a new connection does not see it."""
    text = str(exc)
    return "ducklake_inlined_data_" in text and "does not exist" in text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Lake:
    """The cold store. One DuckDB connection per Lake, guarded for use from several threads."""

    name: StoreName = "cold"

    def __init__(self, settings: Settings, lock_budget_s: float = LOCK_RETRY_SECONDS) -> None:
        self.settings = settings
        self.lock_budget_s = lock_budget_s  # how long lock collisions are retried before raising
        self.lake_dir = Path(settings.lake_dir)
        self.location = LakeLocation.of(settings)
        self._seen = False  # the catalog was found once
        self._con: duckdb.DuckDBPyConnection | None = None
        self._mutex = threading.RLock()
        self._initialised = False
        self._creating = False  # only init() may create a catalog (readers never do)
        self._inlined_rows = 0  # ticks this process inlined since its last flush
        self._inlined_since: float | None = None  # monotonic time of the first of them

    # --- connections
    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A new DuckDB connection with the lake attached as ``lake`` (caller closes it).

        Reads on it can still meet a locked catalog while the archiver commits; wrap
        them in ``tickvault.stores.lake.retry_locked``.
        """
        self.require()
        return open_connection(self.location, ALIAS, read_only=read_only, **self._limits())

    def _limits(self) -> dict[str, int]:
        return {"threads": self.settings.lake_threads, "memory_limit_mb": self.settings.lake_memory_limit_mb}

    def exists(self) -> bool:
        """Whether a lake (its catalog) exists where the settings point. A lake once seen is not
        asked for again (on PostgreSQL each look is a connection)."""
        if not self._seen:
            self._seen = lake_exists(self.location)
        return self._seen

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if self.exists():
                self._con = open_connection(self.location, **self._limits())
            else:  # the first ATTACH creates the catalog: only init(), one process at a time
                if not self._creating:
                    self.require()
                with writer_lock(self.location):
                    self._con = open_connection(self.location, **self._limits())
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

        def attempt_fresh_on_stale_inlining() -> T:
            try:
                return attempt()
            except duckdb.Error as exc:
                if not is_stale_inlining_error(exc):
                    raise
                # another process flushed inlined rows after this connection cached the catalog:
                # a new connection reads the current one (the transaction above rolled back)
                self._discard_connection()
                return attempt()

        with self._mutex:
            try:
                return retry_locked(what, attempt_fresh_on_stale_inlining, self.lock_budget_s)
            except TickvaultError:
                raise
            except duckdb.Error as exc:
                if "No snapshot found" in str(exc):  # as_of before the first commit or past the newest
                    raise QueryError(
                        "the lake has no snapshot at that as_of (before its first commit, or an id not yet written); "
                        "use a later time or a snapshot id from `tickvault snapshots`"
                    ) from None
                if not is_lock_error(exc):
                    self._discard_connection()
                raise StoreError(f"lake: {what} failed ({type(exc).__name__}: {_first_line(exc)})") from exc

    def _rows(self, what: str, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        def run(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row)) for row in cur.fetchall()]

        return self._run(what, run)

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
            self._creating = True
            try:
                if not self._is_complete():
                    with writer_lock(self.location):
                        self._create()
            finally:
                self._creating = False
            self._apply_inline_limit()
            self._initialised = True

    def _existing(self) -> None:
        """For writers other than the archiver (copies, reports): the lake must exist already;
        its schema is then completed or upgraded like init() does."""
        self.require()
        self.init()

    def _apply_inline_limit(self) -> None:
        """Store ``cold_inline_row_limit`` as the ticks table's inlining limit when it differs."""
        limit = self.settings.cold_inline_row_limit
        read = statement("write", "ticks_inline_limit")
        row = self._run("read the inlining limit", lambda con: con.execute(read).fetchone())
        if row is not None and int(row[0]) == limit:
            return
        with writer_lock(self.location):
            self._run("set the inlining limit", lambda con: con.execute(statement("write", "set_ticks_inline_limit", limit=str(limit))))
        log.info("lake: ticks commits of at most %d rows are inlined in the catalog", limit)

    def require(self) -> None:
        """Refuse to work on a lake that does not exist (readers never create one by accident)."""
        if not self.exists():
            raise StoreNotInitialized(
                f"no lake at {self.location.describe()}: check TICKVAULT_LAKE_DIR (and TICKVAULT_LAKE_CATALOG), "
                "or run `tickvault init` to create one there"
            )

    def schema_version(self) -> int:
        """The lake's schema version (1: written before versions were recorded; 0: no tables)."""

        def read(con: duckdb.DuckDBPyConnection) -> int:
            tables = {row[0] for row in con.execute(statement("schema", "lake_tables")).fetchall()}
            if "ticks" not in tables:
                return 0
            recorded = con.execute(statement("schema", "schema_version")).fetchone()[0] if "tickvault_meta" in tables else None
            if recorded is not None:
                return int(recorded)
            # nothing recorded: a schema-1 lake has no venue column; a newer one was interrupted
            # before its init recorded the version
            columns = [d[0] for d in con.execute(statement("schema", "ticks_columns")).description]
            return SCHEMA_VERSION if "venue" in columns else 1

        return self._run("read the schema version", read)

    def _is_complete(self) -> bool:
        def check(con: duckdb.DuckDBPyConnection) -> bool:
            tables = con.execute(statement("schema", "tables_exist")).fetchone()[0]
            return tables == 2 and bool(con.execute(statement("schema", "layout_done")).fetchone()[0])

        return self._run("look up the lake tables", check) and self.schema_version() == SCHEMA_VERSION

    def _create(self) -> None:
        """Under the writer lock: tables in one transaction, then the layout options, which
        cannot share it; the last option marks the layout complete, so an init interrupted
        half-way is redone. A lake of an older schema is upgraded in one transaction first."""
        if self._is_complete():
            return
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"the lake at {self.lake_dir} was written by a newer tickvault (schema version {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade tickvault"
            )
        if 0 < version < 2:
            self._migrate_v2()
        tables = load(__package__, "schema.sql")["create_tables"].split()
        self._run("create the lake tables", lambda con: [con.execute(s.duckdb()) for s in tables], write=True)
        for part in load(__package__, "schema.sql")["layout"].split():
            self._run("set the lake layout", lambda con, s=part: con.execute(s.duckdb()))
        self._run("create the integrity report table", lambda con: con.execute(statement("sync", "integrity_report_table")))
        version_statements = load(__package__, "schema.sql")["set_schema_version"].split()
        self._run("record the schema version",
                  lambda con: [con.execute(s.duckdb(), {"version": str(SCHEMA_VERSION)} if s.params else None) for s in version_statements],
                  write=True)
        log.info("lake ready at %s", self.location.describe())

    def _migrate_v2(self) -> None:
        """Schema 1 -> 2: venue joins the natural key; `_NX` rows become venue NXT (one commit;
        the snapshots before it stay readable with as_of)."""
        log.warning("lake: upgrading %s to schema version 2 (venue in the natural key)", self.lake_dir)
        schema = load(__package__, "schema.sql")

        def transaction(con: duckdb.DuckDBPyConnection) -> None:
            for part in schema["migrate_v2"].split():
                con.execute(part.duckdb())
            if "integrity_report" in {row[0] for row in con.execute(statement("schema", "lake_tables")).fetchall()}:
                for part in schema["migrate_integrity_v2"].split():
                    con.execute(part.duckdb())

        self._run("upgrade the lake to schema 2", transaction, write=True)

    # --- writes
    def _insert_new(self, con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
        low, high = pc.min_max(batch.column("ts")).values()
        params = {
            "first_day": trading_date(low.as_py()),
            "last_day": trading_date(high.as_py()),
            "first_ts": low.as_py(),
            "last_ts": high.as_py(),
            "symbols": pc.unique(batch.column("symbol")).to_pylist(),
        }
        con.register("tv_batch", batch)
        try:
            return int(con.execute(statement("write", "insert_new"), params).fetchone()[0])
        finally:
            con.unregister("tv_batch")

    def write(self, batch: pa.Table, position: StreamPosition | None = None, why: str | None = None) -> int:
        """Add the batch's new ticks (and the stream position) in one DuckLake transaction.

        The commit's message (``why``, default "archiver batch to <stream id>") is what
        `tickvault snapshots` shows for the snapshot.

        ``batch`` is conformed and free of duplicate keys. Returns rows added. Raises on any
        failure (lock budget exhausted, disk full); nothing of the batch is then visible, and
        re-running the call is safe.
        """
        if batch.num_rows == 0 and position is None:
            return 0
        self.init()

        message = why or (f"archiver batch to {position.last_id} ({position.group})" if position is not None else "upsert")

        def transaction(con: duckdb.DuckDBPyConnection) -> int:
            con.execute(statement("write", "commit_message"), {"message": f"{message}: {batch.num_rows} ticks offered"})
            added = self._insert_new(con, batch) if batch.num_rows else 0
            if position is not None:
                con.execute(statement("write", "set_checkpoint"),
                            {"stream": position.stream, "group": position.group, "last_id": position.last_id})
            return added

        with writer_lock(self.location):
            try:
                added = self._run(f"commit {batch.num_rows} ticks", transaction, write=True)
                if 0 < added <= self.settings.cold_inline_row_limit:
                    self._note_inlined(added)
                return added
            except StoreError as exc:
                local = self.location.local_data_dir
                problem = storage_problem(local) if local is not None else None
                if problem is None:
                    raise
                raise StorageFull(
                    f"cannot write to the lake at {self.lake_dir}: {problem} — free space there (or lift the file-size "
                    f"limit); nothing of this batch was committed ({exc})"
                ) from exc

    def _note_inlined(self, rows: int) -> None:
        """Count a commit that landed in the catalog; past ``cold_inline_flush_rows`` ticks or
        ``cold_inline_flush_s`` of age, flush them to Parquet (under the caller's writer lock).

        Inlined rows cost catalog space and a catalog scan in every anti-join, so they are
        moved to Parquet in few, larger files. A failed flush is logged and retried after the
        next commit: the ticks are committed either way."""
        now = time.monotonic()
        self._inlined_rows += rows
        if self._inlined_since is None:
            self._inlined_since = now
        if self._inlined_rows < self.settings.cold_inline_flush_rows and now - self._inlined_since < self.settings.cold_inline_flush_s:
            return
        try:
            flushed = self._run("flush inlined ticks", lambda con: con.execute(statement("write", "flush_inlined_ticks")).fetchall())
        except TickvaultError as exc:
            log.warning("lake: flushing inlined ticks failed (%s); retrying after the next commit", exc)
            return
        self._inlined_rows, self._inlined_since = 0, None
        log.info("lake: flushed inlined ticks to Parquet (%s)", flushed)

    def upsert(self, ticks: pa.Table, why: str = "upsert") -> int:
        """Add ticks from another store, recovery or a user (conformed and deduplicated here);
        ``why`` ("reconcile", "recovery", "rebuild", …) becomes the snapshot's commit message.
        Like ``write`` this creates a missing lake: commands that copy into the lake check
        ``exists()`` first (only `tickvault init` and the archivers create one)."""
        conformed = conform(ticks)
        report_rejects(self.name, conformed.rejects)
        added = self.write(conformed.table, why=why)
        report_conflicts(self, conformed.table, added)
        return added

    def snapshots(self, limit: int = 50, since: datetime | None = None) -> list[dict[str, Any]]:
        """The lake's snapshots, newest first: id, time (UTC), kind (archiver batch, recovery, reconcile,
        rebuild, compaction, maintenance, schema), and the commit message or DuckLake's change list."""
        self.require()
        rows = self._rows("list the snapshots", statement("read", "snapshots"), {"limit": limit, "since": since})
        return [{"id": int(r["id"]), "time": r["time"], "kind": snapshot_kind(r["message"], r["changes"]),
                 "detail": r["message"] or describe_changes(r["changes"])} for r in rows]

    def replace(self, ticks: pa.Table) -> int:
        """Store ``ticks`` in place of the rows holding their natural keys (settling conflicting
        duplicates; only ``reconcile --repair`` does this), in one commit; returns rows written."""
        if ticks.num_rows == 0:
            return 0
        self.require()

        def transaction(con: duckdb.DuckDBPyConnection) -> int:
            low, high = pc.min_max(ticks.column("ts")).values()
            days = {"first_day": trading_date(low.as_py()), "last_day": trading_date(high.as_py())}
            con.register("tv_batch", ticks)
            try:
                con.execute(statement("write", "delete_keys"), days)
            finally:
                con.unregister("tv_batch")
            return self._insert_new(con, ticks)

        with writer_lock(self.location):
            return self._run(f"replace {ticks.num_rows} conflicting ticks", transaction, write=True)

    def checkpoint(self, stream: str, group: str) -> str | None:
        """The highest stream id whose batch this store committed for (stream, group)."""
        self.require()
        row = self._run("read the checkpoint", lambda con: con.execute(
            statement("write", "get_checkpoint"), {"stream": stream, "group": group}).fetchone())
        return row[0] if row else None

    # --- reads
    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None, venue: Venue | None = None,
                   as_of: AsOf = None) -> pa.Table:
        """Ticks with start <= ts < end (of ``venue``, or both) as TICK_SCHEMA, ordered by symbol,
        venue, trade date, cum_volume.

        ``as_of``: a snapshot id (``snapshot_id()`` at some moment) or an aware datetime;
        the lake is read as it was then.
        """
        for name, value in (("start", start), ("end", end)):
            if value.tzinfo is None:
                raise QueryError(f"{name} needs a time zone (e.g. +09:00)")
        self.require()
        params: dict[str, Any] = {"first_day": trading_date(start), "last_day": trading_date(end), "start": start, "end": end}
        clause = at_clause(as_of)
        if clause:
            params["as_of"] = as_of
        filters = ""
        if symbols is not None:
            wanted = sorted(set(symbols))
            if not wanted:
                return TICK_SCHEMA.empty_table()
            params.update({f"symbol_{i}": s for i, s in enumerate(wanted)})
            filters = "AND symbol IN (" + ", ".join(f":symbol_{i}" for i in range(len(wanted))) + ")"
        if venue is not None:
            params["venue"] = venue
            filters += " AND venue = :venue"
        query = statement("read", "read_ticks", ticks=self._ticks_as_of(as_of), filters=filters)
        return as_tick_schema(self._run("read ticks", lambda con: con.execute(query, params).to_arrow_table()))

    def _ticks_as_of(self, as_of: AsOf) -> str:
        """The relation of the lake's ticks now, or as of a snapshot — one before the schema-2
        upgrade (no venue column) read as schema 2 reads it."""
        clause = at_clause(as_of)
        if not clause:
            return "lake.ticks"
        params = {"as_of": as_of}
        names = self._run("read the columns of a snapshot",
                          lambda con: [d[0] for d in con.execute(statement("read", "columns_as_of", at=clause), params).description])
        if "venue" in names:
            return f"(SELECT * FROM lake.ticks {clause})"
        return statement("read", "ticks_v1_as_of", at=clause)

    def candles(self, tf: Timeframe | str, start: datetime, end: datetime, symbols: Sequence[str] | None = None,
                session: bars.Session = "regular", venue: bars.VenueChoice = "ALL", as_of: AsOf = None) -> pa.Table:
        """Bars of CANDLE_SCHEMA from the ticks (``sql/candles.sql``, parallel to the hot store's)."""
        tf, session, venue = parse_timeframe(tf), bars.check_session(session), bars.check_venue(venue)
        grid = bars.day_grid(start, end, tf)
        if not grid["day_no"]:
            return bars.empty_candles()
        self.require()
        wanted = bars.symbol_list(symbols)
        clause = at_clause(as_of)
        params: dict[str, Any] = {"as_of": as_of} if clause else {}
        params.update({
            "width_us": tf.seconds * bars.US, "start": start, "end": end, "all_sessions": session == "extended",
            "consolidated": venue == "ALL", "venue_label": venue,
            "first_day": trading_date(start),
            "last_day": trading_date(end - timedelta(microseconds=1)),
        })
        if wanted is None:
            symbol_filter = "TRUE"
        else:
            symbol_filter = "k.symbol IN (" + ", ".join(f":s{i}" for i in range(len(wanted))) + ")"
            params.update({f"s{i}": s for i, s in enumerate(wanted)})
        days_name = "tv_days"
        query = statement(
            "candles", "candles",
            ticks=self._ticks_as_of(as_of),
            days=days_name, symbols=symbol_filter, prune="k.trade_date BETWEEN :first_day AND :last_day",
            venues="TRUE" if venue == "ALL" else "k.venue = :venue",
        )
        if venue != "ALL":
            params["venue"] = venue
        grid_table = pa.table({k: pa.array(v, pa.int64()) for k, v in grid.items()})

        def run(con: duckdb.DuckDBPyConnection) -> pa.Table:
            con.register(days_name, grid_table)
            try:
                return con.execute(query, params).to_arrow_table()
            finally:
                con.unregister(days_name)

        return bars.finish(self._run("read candles", run))

    def rows_with_keys(self, batch: pa.Table) -> pa.Table:
        """The stored rows (TICK_SCHEMA) holding any natural key of ``batch``."""
        self.require()
        if batch.num_rows == 0:
            return TICK_SCHEMA.empty_table()
        low, high = pc.min_max(batch.column("ts")).values()
        params = {"first_day": trading_date(low.as_py()), "last_day": trading_date(high.as_py()),
                  "first_ts": low.as_py(), "last_ts": high.as_py()}

        def run(con: duckdb.DuckDBPyConnection) -> pa.Table:
            con.register("tv_batch", batch)
            try:
                return con.execute(statement("read", "rows_with_keys"), params).to_arrow_table()
            finally:
                con.unregister("tv_batch")

        return as_tick_schema(self._run("read the rows of a batch's keys", run))

    def has_ticks(self, start: datetime, end: datetime) -> bool:
        self.require()
        params = {"first_day": trading_date(start), "last_day": trading_date(end), "start": start, "end": end}
        return bool(self._rows("look for ticks", statement("read", "has_ticks"), params))

    def count_ticks(self, day: date) -> int:
        """Ticks of one KST trading date."""
        self.require()
        return int(self._run("count ticks", lambda con: con.execute(statement("read", "count_day"), {"day": day}).fetchone()[0]))

    def minute_profile(self, day: date) -> list[dict[str, Any]]:
        """Per venue, symbol and minute of one KST date: ticks, volume, ticks recovery filled in (the daily report)."""
        self.require()
        return self._rows("read the minute profile", statement("read", "minute_profile"), {"day": day})

    def coverage(self, start: datetime, end: datetime, as_of: AsOf = None) -> list[dict[str, Any]]:
        """Per KST date, venue and symbol in [start, end): ticks, first and last trade (``as_of``: as it was)."""
        self.require()
        params: dict[str, Any] = {"first_day": trading_date(start), "last_day": trading_date(end), "start": start, "end": end}
        if at_clause(as_of):
            params["as_of"] = as_of
        return self._rows("read the coverage", statement("read", "coverage", ticks=self._ticks_as_of(as_of)), params)

    def integrity_status(self, first_day: date, last_day: date) -> dict[tuple[date, str, str], str]:
        """(day, venue, symbol) -> the last reconcile's status ("ok" = proven complete); empty before any reconcile."""
        self.require()
        try:
            rows = self._rows("read the integrity status", statement("read", "integrity_status"), {"first_day": first_day, "last_day": last_day})
        except StoreError:  # no reconcile has written the table yet
            return {}
        return {(row["day"], row["venue"], row["symbol"]): row["status"] for row in rows}

    def symbols_of_day(self, day: date) -> list[tuple[str, str]]:
        self.require()
        rows = self._rows("list the day's symbols", statement("read", "symbols_of_day"), {"day": day})
        return [(row["venue"], row["symbol"]) for row in rows]

    def write_universe(self, day: date, pairs: Sequence[tuple[str, str]], source: str) -> None:
        self._existing()
        table = pa.table({"day": pa.array([day] * len(pairs), pa.date32()), "venue": [v for v, _ in pairs],
                          "symbol": [s for _, s in pairs], "source": [source] * len(pairs)})
        statements = load(__package__, "write.sql")["replace_universe"].split()

        def transaction(con: duckdb.DuckDBPyConnection) -> None:
            con.register("tv_universe", table)
            try:
                for part in statements:
                    con.execute(part.duckdb(), {"day": day} if part.params else None)
            finally:
                con.unregister("tv_universe")

        with writer_lock(self.location):
            self._run("write the universe", transaction, write=True)

    def read_universe(self, day: date) -> list[tuple[str, str]]:
        self.require()
        return [(row["venue"], row["symbol"]) for row in self._rows("read the universe", statement("read", "read_universe"), {"day": day})]

    def snapshot_id(self) -> int:
        """The id of the newest committed snapshot (pass it as ``as_of`` to read that state)."""
        self.require()
        return int(self._run("read the snapshot id", lambda con: con.execute(statement("read", "snapshot_id")).fetchone()[0]))

    def file_count(self, day: date | None = None) -> int:
        """Parquet data files of the current snapshot (of one KST date if given)."""
        self.require()
        files = self._run("list data files", lambda con: con.execute(statement("read", "list_files")).fetchall())
        if day is None:
            return len(files)
        marker = f"trade_date={day.isoformat()}"
        return sum(1 for (path,) in files if marker in path)

    def live_files(self, day: date | None = None) -> list[str]:
        """Paths (local or s3://) of the Parquet files of the current snapshot, of one KST date if
        given, from the catalog: what another engine (pyarrow, Spark) must read, and nothing else."""
        self.require()
        rows = self._run("list the live files", lambda con: con.execute(statement("read", "live_files")).fetchall())
        marker = f"trade_date={day.isoformat()}/" if day is not None else ""
        rows = [(path, deletes) for path, deletes in rows if marker in path]
        if any(deletes for _, deletes in rows):
            raise StoreError("the lake has deleted rows (delete files) that readers of the Parquet files alone would miss; "
                             "read it through DuckDB (`tickvault lake-sql`) instead")
        return [path for path, _ in rows]

    # --- the questions of sync and recovery
    def _range(self, start: datetime, end: datetime, symbols: Sequence[str] | None) -> dict[str, Any]:
        self.require()
        return {"start": start, "end": end, "first_day": trading_date(start), "last_day": trading_date(end),
                "symbols": list(symbols or [])}

    def minute_fingerprints(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> list[MinuteFingerprint]:
        rows = self._rows("read minute fingerprints", statement("sync", "minute_fingerprints"), self._range(start, end, symbols))
        return [MinuteFingerprint(**{k: (v if k in ("venue", "symbol") else int(v)) for k, v in row.items()}) for row in rows]

    def breaks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> list[Break]:
        return [Break(**row) for row in self._rows("read breaks", statement("sync", "breaks"), self._range(start, end, symbols))]

    def duplicate_keys(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> list[KeyCopies]:
        rows = self._rows("read duplicate keys", statement("sync", "duplicate_keys"), self._range(start, end, symbols))
        return [KeyCopies(**row) for row in rows]

    def bounds(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> Bounds:
        row = self._rows("read bounds", statement("sync", "bounds"), self._range(start, end, symbols))[0]
        return Bounds(int(row["ticks"]), row["first_ts"], row["last_ts"])

    def write_adjustments(self, table: pa.Table) -> None:
        """Replace each symbol's factors over the dates ``table`` covers (``ADJUSTMENT_SCHEMA``), in one commit."""
        if table.num_rows == 0:
            return
        self.init()
        table = table.cast(ADJUSTMENT_SCHEMA)

        def transaction(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(statement("write", "commit_message"), {"message": f"adjustments: {table.num_rows} factors"})
            for symbol in sorted(set(table.column("symbol").to_pylist())):
                days = table.filter(pc.equal(table.column("symbol"), symbol)).column("day")
                con.execute(statement("sync", "delete_adjustments"),
                            {"symbol": symbol, "first_day": pc.min(days).as_py(), "last_day": pc.max(days).as_py()})
            con.register("tv_adjustments", table)
            try:
                con.execute(statement("sync", "insert_adjustments"))
            finally:
                con.unregister("tv_adjustments")

        with writer_lock(self.location):
            self._run("create lake.adjustments", lambda con: con.execute(statement("sync", "adjustments_table")))
            self._run("write the adjustment factors", transaction, write=True)

    def read_adjustments(self, first_day: date, last_day: date, symbols: Sequence[str] | None = None) -> pa.Table:
        """The stored factors (``ADJUSTMENT_SCHEMA``) of ``symbols`` (or all) from first_day to last_day; empty before any refresh."""
        self.require()
        params: dict[str, Any] = {"first_day": first_day, "last_day": last_day}
        filters = ""
        if symbols is not None:
            params.update({f"symbol_{i}": s for i, s in enumerate(symbols)})
            filters = "AND symbol IN (" + ", ".join(f":symbol_{i}" for i in range(len(symbols))) + ")" if symbols else "AND false"
        query = statement("sync", "read_adjustments", filters=filters)
        try:
            table = self._run("read the adjustment factors", lambda con: con.execute(query, params).to_arrow_table())
        except StoreError:
            if self._run("look for lake.adjustments", lambda con: con.execute(statement("sync", "adjustments_exists")).fetchone()[0]):
                raise
            return ADJUSTMENT_SCHEMA.empty_table()
        return table.cast(ADJUSTMENT_SCHEMA)

    def read_integrity_report(self, day: date) -> list[dict[str, Any]]:
        self.require()
        return self._rows("read lake.integrity_report", statement("sync", "read_integrity"), {"day": day})

    def write_integrity_report(self, rows: Sequence[dict[str, Any]]) -> None:
        """Replace the rows of their (day, symbol), keeping repair counts of earlier runs.

        Each lake write is a commit with new files, so a run that changed nothing (the usual
        scheduled reconcile) leaves the lake's rows as they are; the hot rows carry checked_at."""
        if not rows:
            return
        self._existing()
        batch = pa.Table.from_pylist(list(rows), schema=INTEGRITY_SCHEMA)
        with writer_lock(self.location):
            self._run("create lake.integrity_report", lambda con: con.execute(statement("sync", "integrity_report_table")))
            if _integrity_unchanged(self.read_integrity_report(rows[0]["day"]), rows):
                return
            replace = load(__package__, "sync.sql")["replace_integrity"].split()

            def transaction(con: duckdb.DuckDBPyConnection) -> None:
                con.register("integrity_rows", batch)
                try:
                    for part in replace:
                        con.execute(part.duckdb())
                finally:
                    con.unregister("integrity_rows")

            self._run("write lake.integrity_report", transaction, write=True)

    # --- maintenance
    def compact(self, day: date) -> dict[str, int | float]:
        """Merge the small files of ``day`` (and of any other day that has several).

        The archiver commits every few seconds, so a trading day collects hundreds of small
        files; one-symbol scans over them are ~2.5x slower than over one merged file. DuckLake's
        ``merge_adjacent_files`` rewrites them (honouring SORTED BY) and keeps every snapshot
        readable. First flushes inlined ticks (small commits) to Parquet. Also prunes old checkpoint
        rows and deletes orphaned data files (older than an
        hour). Runs under the writer lock, so the archiver waits a moment and continues.
        Raises if the day's row count changed, which would mean a bug in the merge.
        """
        self.require()
        started = time.perf_counter()
        with writer_lock(self.location, timeout_s=600):
            files_before = self.file_count(day)
            rows_before = self.count_ticks(day)
            self._run("flush inlined ticks", lambda con: con.execute(statement("maintenance", "flush_inlined")).fetchall())
            self._inlined_rows, self._inlined_since = 0, None
            if self.file_count(day) > 1:
                self._run("merge small files", lambda con: con.execute(statement("maintenance", "merge_files")).fetchall())
            self._run("prune old checkpoint rows", lambda con: con.execute(statement("maintenance", "prune_checkpoints")), write=True)
            orphans = self._run("delete orphaned files", lambda con: len(con.execute(statement("maintenance", "delete_orphans")).fetchall()))
            files_after = self.file_count(day)
            rows_after = self.count_ticks(day)
        if rows_after != rows_before:
            raise StoreError(
                f"compaction of {day} changed its row count {rows_before} -> {rows_after}; "
                "read the lake as of an earlier snapshot and report this bug"
            )
        seconds = time.perf_counter() - started
        log.info("compacted %s: %d -> %d files, %d rows, %.2fs", day, files_before, files_after, rows_after, seconds)
        return {"files_before": files_before, "files_after": files_after, "rows": rows_after,
                "orphans_deleted": orphans, "seconds": round(seconds, 3)}

    def expire_snapshots(self, older_than: timedelta) -> dict[str, int]:
        """Forget the snapshots older than ``older_than`` and delete the files only they used.

        Time travel to before the cut ends; the current data is untouched. Each step is its own
        transaction under the writer lock (a transaction may change data or maintain, not both)."""
        self.require()
        cut = datetime.now(KST) - older_than
        with writer_lock(self.location, timeout_s=600):
            expired = self._run("expire snapshots", lambda con: len(
                con.execute(statement("maintenance", "expire_snapshots"), {"older_than": cut}).fetchall()))
            deleted = self._run("delete the files of expired snapshots", lambda con: len(
                con.execute(statement("maintenance", "cleanup_old_files")).fetchall()))
        log.info("lake: expired %d snapshots older than %s, deleted %d files", expired, cut.isoformat(), deleted)
        return {"snapshots": expired, "files_deleted": deleted}

    def close(self) -> None:
        with self._mutex:
            self._discard_connection()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def snapshot_kind(message: str | None, changes: dict[str, Any] | None) -> str:
    """What a snapshot was: tickvault's commit message names it; DuckLake's change list otherwise."""
    if message:
        return message.split(" to ")[0].split(":")[0]
    keys = set(changes or {})
    if "merge_adjacent" in keys:
        return "compaction"
    if keys & {"schemas_created", "tables_created", "tables_altered", "tables_dropped"}:
        return "schema"
    if keys <= {"inlined_delete", "tables_deleted_from", "inlined_flush"} and keys:
        return "maintenance"
    return "write"


def describe_changes(changes: dict[str, Any] | None) -> str:
    return ", ".join(f"{k.replace('_', ' ')}" for k in sorted(changes or {})) or "-"


def _integrity_unchanged(stored: list[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> bool:
    """True when writing ``rows`` would change nothing but ``checked_at`` (no repairs either)."""
    by_series = {(r["venue"], r["symbol"]): r for r in stored}
    for row in rows:
        old = by_series.get((row["venue"], row["symbol"]))
        if old is None or row["repaired_hot"] or row["repaired_cold"]:
            return False
        status = "repaired" if row["status"] == "ok" and (old["repaired_hot"] or old["repaired_cold"]) else row["status"]
        if any(old[k] != (status if k == "status" else row[k]) for k in INTEGRITY_COMPARED):
            return False
    return True
