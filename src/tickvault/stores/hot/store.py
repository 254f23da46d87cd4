"""HotStore: the hot tick store in PostgreSQL (partitioned tables) or TimescaleDB mode.

One class, two schema layers: ``init`` resolves the mode once (setting ``hot_mode``, else
TimescaleDB when the extension is installed or installable) and records it in
``<schema>.hot_meta``, so an existing schema never switches mode behind the operator's back.
Both modes share the write path (staged binary COPY + INSERT ... ON CONFLICT DO NOTHING), the
read path, the checkpoint and the questions sync asks. Every statement lives in ``sql/*.sql``.

Connections come from one pool per store (autocommit; a broken connection is discarded when it
is returned), so the archiver, scheduled jobs and queries of one process share a few sessions
and a restarted server is simply reconnected on the next call. Driver errors leave this class
as ``core.errors`` types (``StoreUnavailable``, ``StoreNotInitialized``, ``StoreError``).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ...core import bars
from ...core.calendar import trading_date, trading_day_bounds
from ...core.config import Settings
from ...core.errors import QueryError, StoreError, StoreNotInitialized, StoreUnavailable, TickvaultError
from ...core.timeframe import Timeframe, parse_timeframe
from ...core.wire import TICK_SCHEMA, UTC, Venue
from ..contract import Bounds, Break, KeyCopies, MinuteFingerprint, StoreName, StreamPosition, conform, report_conflicts, report_rejects
from ..sqlfiles import load
from . import partitions, timescale
from .copy import encode_binary_copy
from .timescale import HotStoreError, origin

log = logging.getLogger(__name__)

MODES = ("postgres", "timescaledb")
#: level -> (level below, bucket width) of the PostgreSQL-mode rollups inside insert_postgres
ROLLUPS = (("5m", "1m", "5 minutes"), ("1h", "5m", "1 hour"), ("1d", "1h", "1 day"))
UPSERT_SLICE_ROWS = 50_000
#: The hot schema this code writes: 1 = before venues (no version recorded), 2 = venue in the key.
SCHEMA_VERSION = 2
POOL_MAX = 4
POOL_TIMEOUT_S = 3.0  # an outage surfaces quickly as StoreUnavailable; callers retry


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')
_LOGIN_REFUSED = re.compile(r'role "([^"]+)" does not exist|password authentication failed for user "([^"]+)"|'
                            r'no password supplied|permission denied for database "([^"]+)"')


def connection_advice(reason: str) -> str:
    """One line for a failed connection that says what to change: the database, the role, or the server."""
    missing = _MISSING_DATABASE.search(reason)
    if missing:
        name = missing.group(1)
        return (f"database {name} does not exist: create it (createdb {name}, or CREATE DATABASE {name}) "
                "or name an existing one in TICKVAULT_PG_URL, then run `tickvault init`")
    refused = _LOGIN_REFUSED.search(reason)
    if refused:
        return (f"PostgreSQL refused the login ({reason.split('FATAL:')[-1].strip()}): "
                "fix the user or password in TICKVAULT_PG_URL, or create that role with LOGIN and CONNECT on the database")
    if "connection info string" in reason or "invalid dsn" in reason.lower() or "invalid connection option" in reason:
        return f"TICKVAULT_PG_URL is not a PostgreSQL URL ({reason}): want postgresql://user@host:5432/dbname"
    return f"hot store unreachable ({reason}); check TICKVAULT_PG_URL and that PostgreSQL is running"


class HotStore:
    """The hot store of one installation (schema ``settings.pg_schema``)."""

    name: StoreName = "hot"

    def __init__(self, settings: Settings, replica: bool = False) -> None:
        """``replica``: connect to ``pg_read_url`` when set (queries and verify; a streaming replica
        answers reads only, so nothing that writes or initialises is given one)."""
        self.settings = settings
        self.replica = replica and settings.pg_read_url is not None
        self.dsn = settings.pg_read_dsn if replica else settings.pg_dsn
        self.schema = settings.pg_schema
        self._mode: str | None = None
        self._known_days: set[date] | None = None
        self._days_lock = threading.Lock()
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._insert_sql: sql.Composed | None = None
        self._fold_sql: sql.Composed | None = None
        self._last_fold = time.monotonic()
        self.last_init_changes: list[str] = []  # TimescaleDB policies init added/updated/removed

    # ------------------------------------------------------------------ SQL and connections
    def sql(self, file: str, name: str, **parts: sql.Composable) -> sql.Composed:
        """Statement ``name`` of ``sql/<file>.sql`` with ``{schema}`` (and ``parts``) filled in."""
        return load(__package__, f"{file}.sql")[name].postgres(schema=sql.Identifier(self.schema), **parts)

    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        """A new dedicated connection (the caller closes it); most callers want ``connection()``."""
        try:
            return psycopg.connect(self.dsn, autocommit=autocommit, application_name="tickvault-hot", connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def connection(self, what: str = "use the hot store") -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection; driver errors inside leave as ``core.errors`` types
        whose message says ``what`` failed."""
        pool = self._get_pool()
        with self._errors(what):
            with pool.connection() as conn:
                yield conn

    def _get_pool(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(
                    self.dsn,
                    min_size=0,
                    max_size=POOL_MAX,
                    timeout=POOL_TIMEOUT_S,
                    kwargs={"autocommit": True, "application_name": "tickvault-hot", "connect_timeout": 10},
                    check=ConnectionPool.check_connection,
                    name=f"tickvault-hot-{self.schema}{'-replica' if self.replica else ''}",
                    num_workers=1,
                    open=True,
                )
            return self._pool

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        reason = first_line(exc)
        if type(exc).__name__ == "PoolTimeout":  # the pool hides why; one direct attempt tells
            try:
                psycopg.connect(self.dsn, connect_timeout=3).close()
            except psycopg.Error as probe:
                reason = first_line(probe)
        advice = connection_advice(reason)  # names TICKVAULT_PG_URL; reads of a replica use their own URL
        return StoreUnavailable(advice.replace("TICKVAULT_PG_URL", "TICKVAULT_PG_READ_URL") if self.replica else advice)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Map driver errors to the tickvault family at this boundary."""
        try:
            yield
        except TickvaultError:
            raise
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
            raise StoreNotInitialized(
                f"hot store schema {self.schema} is not initialised ({first_line(exc)}); run `tickvault init`"
            ) from exc
        except psycopg.OperationalError as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.DiskFull):
                raise StoreError(f"hot store: {what} failed ({first_line(exc)})") from exc
            raise self._unavailable(exc) from exc
        except psycopg.Error as exc:
            raise StoreError(f"hot store: {what} failed ({type(exc).__name__}: {first_line(exc)})") from exc
        except Exception as exc:
            if type(exc).__name__ in ("PoolTimeout", "PoolClosed"):
                raise self._unavailable(exc) from exc
            raise

    def _rows(self, file: str, name: str, params: dict[str, Any], **parts: sql.Composable) -> list[dict[str, Any]]:
        with self.connection(f"read {name.replace('_', ' ')}") as conn, conn.cursor() as cur:
            cur.execute(self.sql(file, name, **parts), params)
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    # ------------------------------------------------------------------ mode
    @property
    def mode(self) -> str:
        """'postgres' or 'timescaledb' — as recorded by init, else as init would choose."""
        if self._mode is None:
            with self.connection() as conn:
                self._mode = self._recorded_mode(conn) or self._choose_mode(conn, create=False)
        return self._mode

    @property
    def extension_version(self) -> str | None:
        """Installed TimescaleDB version in the hot database (None when not installed)."""
        with self.connection() as conn:
            installed, _ = conn.execute(self.sql("schema", "extension_info")).fetchone()
        return installed

    def initialized(self) -> bool:
        """True when ``init`` has run for this schema (its mode is recorded)."""
        with self.connection() as conn:
            return self._recorded_mode(conn) is not None

    def relation_exists(self, conn: psycopg.Connection, name: str) -> bool:
        return bool(conn.execute(self.sql("schema", "relation_exists"), {"relation": f'"{self.schema}"."{name}"'}).fetchone()[0])

    def _recorded_mode(self, conn: psycopg.Connection) -> str | None:
        if not self.relation_exists(conn, "hot_meta"):
            return None
        row = conn.execute(self.sql("schema", "get_meta"), {"key": "mode"}).fetchone()
        return row[0] if row else None

    def _choose_mode(self, conn: psycopg.Connection, create: bool) -> str:
        wanted = self.settings.hot_mode
        if wanted == "postgres":
            return "postgres"
        installed, available = conn.execute(self.sql("schema", "extension_info")).fetchone()
        if installed:
            return "timescaledb"
        if available and create:
            problem = self._create_extension()
            if problem is None:
                return "timescaledb"
            if wanted == "timescaledb":
                raise HotStoreError(f"hot_mode=timescaledb but {problem}; or set TICKVAULT_HOT_MODE=postgres")
            log.warning("%s; using PostgreSQL mode for schema %s", problem, self.schema)
            return "postgres"
        if available and not create:
            return "timescaledb"
        if wanted == "timescaledb":
            raise HotStoreError(
                "hot_mode=timescaledb but the timescaledb extension is not available on this server; "
                "install TimescaleDB or set TICKVAULT_HOT_MODE=postgres"
            )
        return "postgres"

    def _create_extension(self) -> str | None:
        """CREATE EXTENSION timescaledb on a connection of its own: when the library is installed
        but not preloaded the server answers FATAL and closes the session, which must not be the
        one holding init's transaction. Returns None, or what to fix."""
        try:
            with self.connect(autocommit=True) as conn:
                conn.execute(self.sql("schema", "create_extension"))
            return None
        except (psycopg.Error, StoreUnavailable) as exc:
            reason = first_line(exc.__cause__ or exc) if isinstance(exc, StoreUnavailable) else first_line(exc)
            # the library refuses to load unpreloaded with a FATAL that ends the session: any
            # session ended by the server during CREATE EXTENSION gets the same advice
            if "preload" in reason or isinstance(exc, psycopg.OperationalError):
                return (f"TimescaleDB is installed but not preloaded (CREATE EXTENSION ended the session: {reason}): "
                        "add timescaledb to shared_preload_libraries in postgresql.conf and restart PostgreSQL")
            return f"CREATE EXTENSION timescaledb failed ({reason}): grant the right to create it"

    # ------------------------------------------------------------------ schema
    def init(self) -> None:
        """Create or upgrade the schema, partitions/hypertable, candles, report tables and
        policies; idempotent. A writer role without DDL rights uses the schema `tickvault init`
        (run as the owner) left, and fails with one line if there is none."""
        try:
            self._init()
        except StoreError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
                raise
            if not self.initialized():
                raise StoreNotInitialized(
                    f"schema {self.schema} does not exist and this role may not create it "
                    f"({first_line(exc.__cause__)}); run `tickvault init` as the schema owner first"
                ) from None
            version = self.schema_version()
            if version < SCHEMA_VERSION:
                raise StoreNotInitialized(
                    f"schema {self.schema} is at version {version} and this tickvault needs {SCHEMA_VERSION}; "
                    "run `tickvault init` as the schema owner to upgrade it"
                ) from None
            log.info("hot: this role has no DDL rights; using schema %s as `tickvault init` left it", self.schema)

    def schema_version(self) -> int:
        """The recorded schema version (1: written before versions were recorded; 0: no schema)."""
        with self.connection("read the schema version") as conn:
            return self._schema_version(conn)

    def _schema_version(self, conn: psycopg.Connection) -> int:
        if not self.relation_exists(conn, "hot_meta"):
            return 0
        row = conn.execute(self.sql("schema", "get_meta"), {"key": "schema_version"}).fetchone()
        return int(row[0]) if row else 1

    def _init(self) -> None:
        with self.connection("initialise the hot store") as conn:
            with conn.transaction():
                conn.execute(self.sql("schema", "lock_init"), {"schema": self.schema})
                recorded = self._recorded_mode(conn)
                if recorded is None:
                    mode = self._choose_mode(conn, create=True)
                else:
                    mode = recorded
                    if self.settings.hot_mode not in ("auto", recorded):
                        raise HotStoreError(
                            f"schema {self.schema} was created in {recorded} mode but hot_mode={self.settings.hot_mode}; "
                            f"set TICKVAULT_HOT_MODE={recorded} (or auto), or use a new TICKVAULT_PG_SCHEMA and rebuild"
                        )
                if mode == "timescaledb":
                    timescale.policy_plan(self.settings)  # refuse unsafe policy settings before any DDL
                version = SCHEMA_VERSION if recorded is None else self._schema_version(conn)
                if version > SCHEMA_VERSION:
                    raise HotStoreError(
                        f"schema {self.schema} was written by a newer tickvault (schema version {version}, this one knows "
                        f"{SCHEMA_VERSION}); upgrade tickvault"
                    )
                if not self.relation_exists(conn, "ingest_checkpoint"):
                    conn.execute(self.sql("schema", "common_tables"))
                if recorded is None:
                    conn.execute(self.sql("schema", "set_meta"), {"key": "mode", "value": mode})
                if version < 2:
                    self._migrate_v2(conn, mode)
                if mode == "postgres" and not self.relation_exists(conn, "candles_1d"):
                    conn.execute(self.sql("schema", "postgres_tables"))
                if mode == "postgres":
                    partitions.install_function(conn, self)
                if mode == "postgres" and not self.relation_exists(conn, "candle_delta"):
                    conn.execute(self.sql("schema", "candle_delta_table"))
                for table in ("integrity_report", "recovery_report", "universe"):
                    if not self.relation_exists(conn, table):
                        conn.execute(self.sql("schema", f"{table}_table"))
                conn.execute(self.sql("schema", "set_meta"), {"key": "schema_version", "value": str(SCHEMA_VERSION)})
            if mode == "timescaledb":
                self.last_init_changes = timescale.init_schema(conn, self)
        self._mode = mode
        self._insert_sql = self._fold_sql = None
        if mode == "postgres":
            self._ensure_days(self._days_ahead(datetime.now(UTC)))

    def _migrate_v2(self, conn: psycopg.Connection, mode: str) -> None:
        """Schema 1 -> 2: venue joins the natural key; `_NX` rows become venue NXT (one transaction)."""
        log.warning("hot: upgrading schema %s to version 2 (venue in the natural key)", self.schema)
        if mode == "timescaledb":
            timescale.migrate_v2(conn, self)
        else:
            conn.execute(self.sql("schema", "migrate_postgres_v2"))
        conn.execute(self.sql("schema", "migrate_reports_v2"))

    # ------------------------------------------------------------------ writes
    @property
    def defers_candles(self) -> bool:
        """PostgreSQL mode with ``hot_candle_fold_ms`` > 0: writes log candle deltas, folds merge them."""
        return self.mode == "postgres" and self.settings.hot_candle_fold_ms > 0

    def _merges(self, first: list[sql.Composed]) -> sql.Composed:
        """``first`` (how delta_1m is made), then the merge into candles_1m and each rollup + merge."""
        parts = [*first, self.sql("write", "merge_candles", level=sql.SQL("1m"), table=sql.Identifier("candles_1m"))]
        for level, source, width in ROLLUPS:
            parts.append(self._rollup(level, source, width))
            parts.append(self.sql("write", "merge_candles", level=sql.SQL(level), table=sql.Identifier(f"candles_{level}")))
        return sql.SQL(",\n").join(parts)

    def _rollup(self, level: str, source: str, width: str) -> sql.Composed:
        return self.sql("write", "rollup", level=sql.SQL(level), source=sql.SQL(source),
                        width=sql.Literal(width) + sql.SQL("::interval"), origin=origin())

    def _insert(self) -> sql.Composed:
        if self._insert_sql is None:
            if self.mode == "timescaledb":
                self._insert_sql = self.sql("write", "insert_timescale")
            else:
                rollups = self.sql("write", "log_delta") if self.defers_candles else self._merges([])
                self._insert_sql = self.sql("write", "insert_postgres", rollups=rollups, origin=origin())
        return self._insert_sql

    def fold_candles(self) -> int:
        """Merge the logged candle deltas into candles_1m -> 1d (PostgreSQL mode, deferred
        candles); returns the delta rows folded. Safe to run from any process at any time."""
        if self.mode != "postgres":
            return 0
        if self._fold_sql is None:
            self._fold_sql = self.sql("write", "fold_deltas", rollups=self._merges([self._rollup("1m", "taken", "1 minute")]))
        with self.connection("fold candle deltas") as conn, conn.transaction():
            row = conn.execute(self._fold_sql).fetchone()
        self._last_fold = time.monotonic()
        return int(row[0]) if row else 0

    def _fold_if_due(self) -> None:
        """After a write with deferred candles: fold once ``hot_candle_fold_ms`` has passed. A
        failed fold leaves the deltas logged for the next one (the ticks are committed)."""
        if time.monotonic() - self._last_fold < self.settings.hot_candle_fold_ms / 1000:
            return
        try:
            self.fold_candles()
        except StoreError as exc:
            log.warning("hot: folding candle deltas failed (%s); the next write retries", exc)

    def write(self, batch: pa.Table, position: StreamPosition | None = None) -> int:
        """Durably add the batch's new ticks and ``position`` in one transaction; rows added."""
        if batch.num_rows == 0 and position is None:
            return 0
        if self.mode == "postgres":
            self._ensure_days(partitions.batch_days(batch))
        try:
            with self.connection(f"write {batch.num_rows} ticks") as conn:
                added = self._write(conn, batch, position)
        except StoreError:
            self._known_days = None  # a partition may have been dropped by another process
            raise
        if self.defers_candles:
            self._fold_if_due()
        return added

    def _write(self, conn: psycopg.Connection, batch: pa.Table, position: StreamPosition | None) -> int:
        params = {"candle_cutoff": self.candle_cutoff()} if self.mode == "postgres" else None
        payload = encode_binary_copy(batch)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(self.sql("write", "create_stage"))
            with cur.copy(self.sql("write", "copy_stage")) as copy:
                copy.write(payload)
            cur.execute(self._insert(), params)
            row = cur.fetchone() if cur.description else None
            added = int(row[0]) if row is not None else max(cur.rowcount, 0)
            if position is not None:
                cur.execute(self.sql("write", "set_checkpoint"),
                            {"stream": position.stream, "grp": position.group, "last_id": position.last_id})
        return added

    def candle_cutoff(self, now: datetime | None = None) -> datetime:
        """Start of the oldest KST day still inside the tick retention. Ticks before it are
        stored but change no candle (both modes): that day's candles are final."""
        horizon = (now or datetime.now(UTC)) - timedelta(days=self.settings.tick_retention_days)
        return trading_day_bounds(partitions.today_kst(horizon))[0]

    def upsert(self, ticks: pa.Table, why: str = "upsert") -> int:  # why: the lake's snapshots record it; no snapshots here
        """Add ticks not yet stored (reconcile, recovery, rebuild, users); returns rows added.

        One transaction per slice: a rebuild of millions of rows neither holds one giant
        transaction nor loses progress; each slice is idempotent on its own."""
        conformed = conform(ticks)
        report_rejects(self.name, conformed.rejects)
        batch = conformed.table
        added = 0
        for offset in range(0, batch.num_rows, UPSERT_SLICE_ROWS):
            piece = batch.slice(offset, UPSERT_SLICE_ROWS)
            piece_added = self.write(piece)
            report_conflicts(self, piece, piece_added)
            added += piece_added
        if added and self.defers_candles:
            self.fold_candles()  # recovery and reconcile leave the candles current
        if added and self.mode == "timescaledb":
            self._refresh_days(partitions.batch_days(batch))
        return added

    def _refresh_days(self, days: set[date]) -> None:
        """After an upsert: bring the candles of the touched days up to date now instead of at
        the next policy run — but never for days whose chunks retention may have dropped (a
        refresh there would rebuild candles from partial ticks)."""
        # one day of margin: a KST day spans two UTC-aligned chunks, the older may be gone already
        oldest = self.candle_cutoff() + timedelta(days=1)
        for day in sorted(days):
            start, end = trading_day_bounds(day)
            if start < oldest:
                log.warning("hot: ticks added on %s, older than the tick retention; its candles are left as they were", day)
                continue
            try:
                self.refresh_candles(start, end)
            except StoreError as exc:  # the ticks are committed; the refresh policy catches up
                log.warning("hot: candles of %s not refreshed now (%s); the refresh policy will within the hour", day, exc)

    def replace(self, ticks: pa.Table) -> int:
        """Store ``ticks`` in place of the rows holding their natural keys (settling conflicting
        duplicates; only ``reconcile --repair`` does this), in one transaction; returns rows written.

        PostgreSQL mode rebuilds the candles of every (venue, symbol, trading date) touched by
        re-inserting that day's ticks through insert_postgres; TimescaleDB mode refreshes the
        days' continuous aggregates. Deleting ticks needs the schema owner (the writer role may not).
        """
        if ticks.num_rows == 0:
            return 0
        days = partitions.batch_days(ticks)
        try:
            with self.connection(f"replace {ticks.num_rows} conflicting ticks") as conn, conn.transaction(), conn.cursor() as cur:
                cur.execute(self.sql("write", "create_stage"))
                with cur.copy(self.sql("write", "copy_stage")) as copy:
                    copy.write(encode_binary_copy(ticks))
                if self.mode == "timescaledb":
                    cur.execute(self.sql("write", "delete_staged_keys"))
                    cur.execute(self._insert())
                else:
                    cutoff = self.candle_cutoff()
                    cur.execute(self.sql("write", "lock_ticks_for_restage"))
                    series_days = {(r["venue"], r["symbol"], trading_date(r["ts"]))
                                   for r in ticks.select(["venue", "symbol", "ts"]).to_pylist()}
                    for venue, symbol, day in sorted(series_days):
                        start, end = trading_day_bounds(day)
                        where = {"venue": venue, "symbol": symbol, "start": start, "end": end}
                        cur.execute(self.sql("write", "restage_day"), where)
                        for level in ("1m", *(level for level, _, _ in ROLLUPS)):
                            cur.execute(self.sql("write", "delete_day_candles", table=sql.Identifier(f"candles_{level}")),
                                        {**where, "candle_cutoff": cutoff})
                    cur.execute(self._insert(), {"candle_cutoff": cutoff})  # the day's ticks again, with the winners
        except StoreError as exc:
            if isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
                raise StoreError(
                    f"hot store: replacing conflicting ticks deletes rows, which this role may not do in schema {self.schema}; "
                    "run `tickvault reconcile --repair` as the schema owner"
                ) from exc
            raise
        if self.mode == "timescaledb":
            self._refresh_days(days)
        return ticks.num_rows

    def checkpoint(self, stream: str, group: str) -> str | None:
        """The highest stream id whose batch this store committed for (stream, group)."""
        with self.connection() as conn:
            if not self.relation_exists(conn, "ingest_checkpoint"):
                return None
            row = conn.execute(self.sql("write", "get_checkpoint"), {"stream": stream, "grp": group}).fetchone()
        return row[0] if row else None

    def write_metrics(self, rows: Sequence[tuple[datetime, str, str, float]]) -> None:
        """Append metric samples (ts, name, labels as JSON text, value) to ``<schema>.metrics``."""
        with self.connection("write metrics") as conn, conn.transaction(), conn.cursor() as cur:
            with cur.copy(self.sql("write", "copy_metrics")) as copy:
                for row in rows:
                    copy.write_row(row)

    # ------------------------------------------------------------------ partitions and retention
    def _days_ahead(self, now: datetime) -> set[date]:
        today = partitions.today_kst(now)
        return {today + timedelta(days=i) for i in range(self.settings.partitions_ahead_days + 1)}

    def _ensure_days(self, days: set[date]) -> None:
        with self._days_lock:
            if self._known_days is not None and days <= self._known_days:
                return
            with self.connection() as conn:
                known = partitions.existing_days(conn, self)
                missing = days - known
                if missing:
                    partitions.create_days(conn, self, missing)
                    log.info("hot: created tick partition(s) for %s", ", ".join(str(d) for d in sorted(missing)))
                self._known_days = known | missing

    def maintain(self, now: datetime | None = None) -> dict[str, Any]:
        """Create partitions ahead and apply retention (PostgreSQL mode; TimescaleDB runs policies itself)."""
        now = now or datetime.now(UTC)
        report: dict[str, Any] = {"mode": self.mode, "dropped_partitions": [], "deleted_rows": {}}
        if self.mode != "postgres":
            return report
        self._ensure_days(self._days_ahead(now))
        report["folded_candle_deltas"] = self.fold_candles()  # deltas left by a stopped archiver
        try:
            self._apply_retention(now, report)
        except StoreError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
                raise
            raise StoreError(
                f"hot retention of schema {self.schema} needs its owner (this role may not drop partitions or delete "
                "old rows); partitions ahead are in place — run `tickvault maintain` as the schema owner daily"
            ) from exc
        if report["dropped_partitions"]:
            log.info("hot retention: dropped %s", ", ".join(report["dropped_partitions"]))
        return report

    def _apply_retention(self, now: datetime, report: dict[str, Any]) -> None:
        s = self.settings
        with self.connection("apply the hot retention") as conn:
            with self._days_lock:
                expired = partitions.expired_days(partitions.existing_days(conn, self), now, s.tick_retention_days)
                report["dropped_partitions"] = partitions.drop_days(conn, self, expired)
                self._known_days = None
            retention = {
                "candles_1m": s.candles_1m_retention_days,
                "candles_5m": s.candles_5m_retention_days,
                "candles_1h": s.candles_1h_retention_days,
                "candles_1d": s.candles_1d_retention_days,
            }
            targets = [(table, "bucket", days) for table, days in retention.items() if days is not None]
            targets.append(("metrics", "ts", s.metrics_retention_days))
            for table, column, days in targets:
                cur = conn.execute(
                    self.sql("partitions", "delete_before", table=sql.Identifier(table), column=sql.Identifier(column)),
                    {"cutoff": now - timedelta(days=days)},
                )
                report["deleted_rows"][table] = cur.rowcount

    def refresh_candles(self, start: datetime, end: datetime) -> None:
        """Materialise candles now (after recovery upserts, in tests). TimescaleDB: refresh
        [start, end). PostgreSQL mode: fold the logged deltas (all of them) when candles are
        deferred; otherwise every insert kept them current."""
        if self.mode != "timescaledb":
            if self.defers_candles:
                self.fold_candles()
            return
        with self.connection() as conn:
            timescale.refresh_candles(conn, self, start, end)

    # ------------------------------------------------------------------ reads
    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None,
                   venue: Venue | None = None) -> pa.Table:
        """Ticks with start <= ts < end (of ``venue``, or both) as TICK_SCHEMA, ordered by symbol,
        venue, KST date, cum_volume."""
        if start.tzinfo is None or end.tzinfo is None:
            raise QueryError("read_ticks needs timezone-aware datetimes (e.g. tickvault.core.wire.trading_day_bounds)")
        filters = []
        if symbols is not None:
            filters.append(sql.SQL("AND symbol = ANY({})").format(sql.Literal(list(symbols))))
        if venue is not None:
            filters.append(sql.SQL("AND venue = {}").format(sql.Literal(venue)))
        stmt = self.sql("read", "read_ticks", start=sql.Literal(start), end=sql.Literal(end), filters=sql.SQL(" ").join(filters))
        out = io.BytesIO()
        with self.connection("read ticks") as conn, conn.cursor() as cur:
            with cur.copy(stmt) as copy:
                for chunk in copy:
                    out.write(chunk)
        return csv_to_ticks(out.getvalue())

    def candles(self, tf: Timeframe | str, start: datetime, end: datetime, symbols: Sequence[str] | None = None,
                session: bars.Session = "regular", venue: bars.VenueChoice = "ALL") -> pa.Table:
        """Bars of CANDLE_SCHEMA from the ticks (``sql/candles.sql``, parallel to the lake's)."""
        tf, session, venue = parse_timeframe(tf), bars.check_session(session), bars.check_venue(venue)
        grid = bars.day_grid(start, end, tf)
        if not grid["day_no"]:
            return bars.empty_candles()
        wanted = bars.symbol_list(symbols)
        params: dict[str, Any] = dict(grid)
        params.update({"width_us": tf.seconds * bars.US, "start": start, "end": end, "all_sessions": session == "extended",
                       "consolidated": venue == "ALL", "venue_label": venue})
        symbol_filter = sql.SQL("TRUE")
        if wanted is not None:
            symbol_filter = sql.SQL("k.symbol = ANY({}::text[])").format(sql.Literal(wanted))
        venue_filter = sql.SQL("TRUE") if venue == "ALL" else sql.SQL("k.venue = {}").format(sql.Literal(venue))
        with self.connection("read candles") as conn, conn.cursor() as cur:
            cur.execute(self.sql("candles", "candles", symbols=symbol_filter, venues=venue_filter), params)
            rows = cur.fetchall()
        columns = {name: [r[i] for r in rows] for i, name in enumerate(("bucket_us",) + bars.CANDLE_COLUMNS[1:])}
        return bars.finish(columns)

    def rows_with_keys(self, batch: pa.Table) -> pa.Table:
        """The stored rows (TICK_SCHEMA) holding any natural key of ``batch``."""
        params = {"venues": batch.column("venue").to_pylist(), "symbols": batch.column("symbol").to_pylist(),
                  "ts": batch.column("ts").to_pylist(), "cum_volumes": batch.column("cum_volume").to_pylist()}
        rows = self._rows("read", "rows_with_keys", params) if batch.num_rows else []
        return pa.Table.from_pylist(rows, schema=TICK_SCHEMA)

    def has_ticks(self, start: datetime, end: datetime) -> bool:
        with self.connection() as conn:
            return conn.execute(self.sql("read", "has_ticks"), {"start": start, "end": end}).fetchone() is not None

    def count_ticks(self, day: date) -> int:
        start, end = trading_day_bounds(day)
        with self.connection() as conn:
            return int(conn.execute(self.sql("read", "count_ticks"), {"start": start, "end": end}).fetchone()[0])

    def user_query(self, text: str) -> pa.Table:
        """A person's query (`tickvault sql --hot`) in a read-only transaction, this schema's tables by plain
        name; a mistake in it is a QueryError, an outage StoreUnavailable."""
        with self.connection("run the query") as conn, conn.transaction():
            conn.execute(self.sql("read", "read_only_transaction"))
            conn.execute(self.sql("read", "search_path"))
            try:
                cur = conn.execute(text)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise QueryError(f"PostgreSQL: {first_line(exc)}") from None
            if cur.description is None:
                return pa.table({})
            names = [d.name for d in cur.description]
            columns = list(zip(*cur.fetchall())) or [() for _ in names]
            return pa.Table.from_arrays([pa.array(list(values)) for values in columns], names=names)

    def coverage(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per KST date, venue and symbol in [start, end): ticks, first and last trade."""
        return self._rows("read", "coverage", {"start": start, "end": end})

    def integrity_status(self, first_day: date, last_day: date) -> dict[tuple[date, str, str], str]:
        """(day, venue, symbol) -> the last reconcile's status ("ok" = proven complete)."""
        rows = self._rows("read", "integrity_status", {"first_day": first_day, "last_day": last_day})
        return {(row["day"], row["venue"], row["symbol"]): row["status"] for row in rows}

    def symbols_of_day(self, day: date) -> list[tuple[str, str]]:
        start, end = trading_day_bounds(day)
        return [(row["venue"], row["symbol"]) for row in self._rows("read", "symbols_of_day", {"start": start, "end": end})]

    def write_universe(self, day: date, pairs: Sequence[tuple[str, str]], source: str) -> None:
        rows = [{"day": day, "venue": venue, "symbol": symbol, "source": source} for venue, symbol in pairs]
        with self.connection("write the universe") as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(self.sql("sync", "replace_universe"), {"day": day})
            cur.executemany(self.sql("sync", "insert_universe"), rows)

    def read_universe(self, day: date) -> list[tuple[str, str]]:
        return [(row["venue"], row["symbol"]) for row in self._rows("read", "read_universe", {"day": day})]

    # ------------------------------------------------------------------ the questions of sync and recovery
    def minute_fingerprints(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> list[MinuteFingerprint]:
        rows = self._rows("sync", "minute_fingerprints", _range(start, end, symbols))
        return [MinuteFingerprint(**{k: (v if k in ("venue", "symbol") else int(v)) for k, v in row.items()}) for row in rows]

    def breaks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> list[Break]:
        return [Break(**row) for row in self._rows("sync", "breaks", _range(start, end, symbols))]

    def duplicate_keys(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> list[KeyCopies]:
        """Always empty: the unique constraint on the natural key rules duplicates out."""
        return []

    def bounds(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> Bounds:
        row = self._rows("sync", "bounds", _range(start, end, symbols))[0]
        return Bounds(int(row["ticks"]), row["first_ts"], row["last_ts"])

    def write_integrity_report(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert one row per (day, venue, symbol); repair counts accumulate over the day's runs."""
        with self.connection("write the integrity report") as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(self.sql("sync", "upsert_integrity"), list(rows))

    def read_integrity_report(self, day: date) -> list[dict[str, Any]]:
        return self._rows("sync", "read_integrity", {"day": day})

    def read_recovery_report(self, day: date) -> list[dict[str, Any]]:
        """The latest recovery run's verdict per (broker, venue, symbol) of one date."""
        return self._rows("sync", "read_recovery_report", {"day": day})

    def write_recovery_report(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert one row per (day, broker, symbol); the latest recovery run wins."""
        with self.connection("write the recovery report") as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(self.sql("sync", "upsert_recovery_report"), list(rows))

    def status(self) -> dict[str, Any]:
        """Mode and extension version for `tickvault status`."""
        return {"mode": self.mode, "extension_version": self.extension_version, "schema": self.schema}

    def close(self) -> None:
        """Close the pool (idempotent); the store opens a new one if used again."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __del__(self) -> None:  # a store dropped without close() must not leak sessions and threads
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __enter__(self) -> HotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _range(start: datetime, end: datetime, symbols: Sequence[str] | None) -> dict[str, Any]:
    return {"start": start, "end": end, "symbols": list(symbols or [])}


_CSV_COLUMNS = ["venue", "symbol", "ts", "price", "volume", "cum_volume", "side", "source", "received_at"]
_CSV_TYPES = {
    "venue": pa.string(),
    "symbol": pa.string(),
    "ts": pa.int64(),
    "price": TICK_SCHEMA.field("price").type,
    "volume": pa.int64(),
    "cum_volume": pa.int64(),
    "side": pa.string(),
    "source": pa.string(),
    "received_at": pa.int64(),
}


def csv_to_ticks(data: bytes) -> pa.Table:
    """COPY ... (FORMAT csv, FORCE_QUOTE) output of read_ticks -> TICK_SCHEMA (exact decimals,
    UTC instants). Only unquoted empty fields are NULL, so no text ever reads back as NULL."""
    if not data:
        return TICK_SCHEMA.empty_table()
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=_CSV_COLUMNS, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types=_CSV_TYPES, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    ts_type = TICK_SCHEMA.field("ts").type
    columns = []
    for field in TICK_SCHEMA:
        column = table.column(field.name)
        if field.name in ("ts", "received_at"):
            column = column.cast(ts_type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=TICK_SCHEMA)
