"""HotStore: the hot tick store in PostgreSQL (partitioned tables) or TimescaleDB mode.

One class, two schema layers: ``init`` resolves the mode once (setting ``hot_mode``,
else TimescaleDB when the extension is installed or installable) and records it in
``<schema>.hot_meta``, so an existing schema never switches mode behind the operator's
back. Both modes share the write path (staged binary COPY + INSERT ... ON CONFLICT DO
NOTHING), the read path and the checkpoint table.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ...core.config import Settings
from ...core.wire import TICK_SCHEMA, UTC, dedupe, kst_day_bounds
from . import partitions
from .sqlfiles import query, sql_text
from .writer import postgres_write_sql, timescale_write_sql, write_batch

if TYPE_CHECKING:
    from .sink import HotSink

log = logging.getLogger(__name__)

MODES = ("postgres", "timescaledb")
CANDLE_LEVELS = ("1m", "5m", "1h", "1d")
UPSERT_SLICE_ROWS = 50_000


class HotStoreError(RuntimeError):
    """A configuration problem the operator must fix (the message says how)."""


class HotStore:
    """The hot store of one installation (schema ``settings.pg_schema``)."""

    name = "hot"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema = settings.pg_schema
        self._mode: str | None = None
        self._extension_version: str | None = None
        self._known_days: set[date] | None = None
        self._days_lock = threading.Lock()
        self._insert_sql: sql.Composed | None = None
        self.last_init_changes: list[str] = []  # TimescaleDB policies init added/updated/removed

    # ------------------------------------------------------------------ connections
    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        """A new connection to the hot database; the caller closes it. Tables are ``<schema>.<name>``."""
        return psycopg.connect(self.settings.pg_dsn, autocommit=autocommit, application_name="tickvault-hot", connect_timeout=10)

    # ------------------------------------------------------------------ mode
    @property
    def mode(self) -> str:
        """'postgres' or 'timescaledb' — as recorded by init, else as init would choose."""
        if self._mode is None:
            with self.connect(autocommit=True) as conn:
                self._mode = self._recorded_mode(conn) or self._choose_mode(conn, create=False)
        return self._mode

    @property
    def extension_version(self) -> str | None:
        """Installed TimescaleDB version in the hot database (None when not installed)."""
        with self.connect(autocommit=True) as conn:
            installed, _ = conn.execute(sql_text("extension_info.sql")).fetchone()
        self._extension_version = installed
        return installed

    def initialized(self) -> bool:
        """True when ``init`` has run for this schema (its mode is recorded)."""
        with self.connect(autocommit=True) as conn:
            return self._recorded_mode(conn) is not None

    def _recorded_mode(self, conn: psycopg.Connection) -> str | None:
        exists = conn.execute(sql_text("schema_exists.sql"), {"meta": f"{self.schema}.hot_meta"}).fetchone()[0]
        if not exists:
            return None
        row = conn.execute(query("meta_get.sql", self.schema), {"key": "mode"}).fetchone()
        return row[0] if row else None

    def _choose_mode(self, conn: psycopg.Connection, create: bool) -> str:
        wanted = self.settings.hot_mode
        if wanted == "postgres":
            return "postgres"
        installed, available = conn.execute(sql_text("extension_info.sql")).fetchone()
        if installed:
            return "timescaledb"
        if available and create:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                return "timescaledb"
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0]
                if wanted == "timescaledb":
                    raise HotStoreError(
                        f"hot_mode=timescaledb but CREATE EXTENSION timescaledb failed ({reason}); "
                        "add timescaledb to shared_preload_libraries and grant the right to create it, or set TICKVAULT_HOT_MODE=postgres"
                    ) from None
                log.warning("TimescaleDB is available but could not be created (%s); using PostgreSQL mode", reason)
                return "postgres"
        if available and not create:
            return "timescaledb"
        if wanted == "timescaledb":
            raise HotStoreError(
                "hot_mode=timescaledb but the timescaledb extension is not available on this server; "
                "install TimescaleDB or set TICKVAULT_HOT_MODE=postgres"
            )
        return "postgres"

    # ------------------------------------------------------------------ schema
    def init(self) -> None:
        """Create or upgrade the schema, partitions/hypertable, candles and policies; idempotent."""
        with self.connect(autocommit=True) as conn:
            with conn.transaction():
                conn.execute(sql_text("init_lock.sql"), {"schema": self.schema})
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
                    from . import timescale

                    timescale.policy_plan(self.settings)  # refuse unsafe policy settings before any DDL
                conn.execute(query("common_schema.sql", self.schema))
                conn.execute(query("meta_set.sql", self.schema), {"key": "mode", "value": mode})
                if mode == "postgres":
                    conn.execute(query("pg_schema.sql", self.schema))
            if mode == "timescaledb":
                from . import timescale

                self.last_init_changes = timescale.init_schema(conn, self.settings)
        self._mode = mode
        self._insert_sql = None
        if mode == "postgres":
            self._ensure_days(self._days_ahead(datetime.now(UTC)))

    # ------------------------------------------------------------------ writes
    def insert_sql(self) -> sql.Composed:
        if self._insert_sql is None:
            self._insert_sql = postgres_write_sql(self.schema) if self.mode == "postgres" else timescale_write_sql(self.schema)
        return self._insert_sql

    def write(self, conn: psycopg.Connection, batch: pa.Table, checkpoint: tuple[str, str, str] | None = None) -> int:
        """Idempotent insert of ``batch`` on ``conn`` (autocommit connection), optionally with a checkpoint."""
        if batch.num_rows == 0 and checkpoint is None:
            return 0
        if self.mode == "postgres":
            self._ensure_days(partitions.batch_days(batch), conn)
        params = {"candle_cutoff": self.candle_cutoff()} if self.mode == "postgres" else None
        try:
            return write_batch(conn, self.schema, self.insert_sql(), batch, checkpoint, params)
        except psycopg.Error:
            self._known_days = None  # a partition may have been dropped by another process
            raise

    def candle_cutoff(self, now: datetime | None = None) -> datetime:
        """Start of the oldest KST day still inside the tick retention. Ticks before it are
        stored but change no candle (both modes): that day's candles are final."""
        horizon = (now or datetime.now(UTC)) - timedelta(days=self.settings.tick_retention_days)
        return kst_day_bounds(partitions.today_kst(horizon))[0]

    def upsert(self, table: pa.Table) -> int:
        """Insert ticks not yet stored (reconcile, recovery, rebuild); returns rows added."""
        missing = [name for name in TICK_SCHEMA.names if name not in table.column_names]
        if missing:
            raise ValueError(f"tick batch lacks column(s) {', '.join(missing)}; build it with tickvault.model.TICK_SCHEMA")
        try:
            batch = dedupe(table.select(list(TICK_SCHEMA.names)).cast(TICK_SCHEMA))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"tick batch does not fit TICK_SCHEMA ({exc}); nothing was stored") from None
        added = 0
        with self.connect(autocommit=True) as conn:
            # one transaction per slice: a rebuild of millions of rows neither holds one giant
            # transaction nor loses progress; each slice is idempotent on its own
            for offset in range(0, batch.num_rows, UPSERT_SLICE_ROWS):
                added += self.write(conn, batch.slice(offset, UPSERT_SLICE_ROWS))
            if added and self.mode == "timescaledb":
                self._refresh_days(conn, partitions.batch_days(batch))
        return added

    def _refresh_days(self, conn: psycopg.Connection, days: set[date]) -> None:
        """After an upsert (recovery, reconcile, rebuild): bring the candles of the touched days
        up to date now instead of at the next policy run — but never for days whose chunks
        retention may have dropped (a refresh there would rebuild candles from partial ticks)."""
        from . import timescale

        # one day of margin: a KST day spans two UTC-aligned chunks, the older may be gone already
        oldest = self.candle_cutoff() + timedelta(days=1)
        for day in sorted(days):
            start, end = kst_day_bounds(day)
            if start >= oldest:
                try:
                    timescale.refresh_candles(conn, self.schema, start, end)
                except psycopg.Error as exc:  # the ticks are committed; the refresh policy catches up
                    log.warning("hot: candles of %s not refreshed now (%s); the refresh policy will within the hour", day, str(exc).strip().splitlines()[0])
            else:
                log.warning("hot: ticks added on %s, older than the tick retention; its candles are left as they were", day)

    def sink(self) -> HotSink:
        from .sink import HotSink

        return HotSink(self)

    # ------------------------------------------------------------------ partitions
    def _days_ahead(self, now: datetime) -> set[date]:
        today = partitions.today_kst(now)
        return {today + timedelta(days=i) for i in range(self.settings.partitions_ahead_days + 1)}

    def _ensure_days(self, days: set[date], conn: psycopg.Connection | None = None) -> None:
        with self._days_lock:
            if self._known_days is not None and days <= self._known_days:
                return
            own = conn is None
            conn = conn or self.connect(autocommit=True)
            try:
                known = partitions.existing_days(conn, self.schema)
                missing = days - known
                if missing:
                    partitions.create_days(conn, self.schema, missing)
                    log.info("hot: created tick partition(s) for %s", ", ".join(str(d) for d in sorted(missing)))
                self._known_days = known | missing
            finally:
                if own:
                    conn.close()

    def maintain(self, now: datetime | None = None) -> dict[str, Any]:
        """Create partitions ahead and apply retention (PostgreSQL mode; TimescaleDB runs policies itself)."""
        now = now or datetime.now(UTC)
        report: dict[str, Any] = {"mode": self.mode, "dropped_partitions": [], "deleted_rows": {}}
        if self.mode != "postgres":
            return report
        s = self.settings
        self._ensure_days(self._days_ahead(now))
        with self.connect(autocommit=True) as conn:
            with self._days_lock:
                expired = partitions.expired_days(partitions.existing_days(conn, self.schema), now, s.tick_retention_days)
                report["dropped_partitions"] = partitions.drop_days(conn, self.schema, expired)
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
                    query("pg_delete_before.sql", self.schema, table=sql.Identifier(table), column=sql.Identifier(column)),
                    {"cutoff": now - timedelta(days=days)},
                )
                report["deleted_rows"][table] = cur.rowcount
        if report["dropped_partitions"]:
            log.info("hot retention: dropped %s", ", ".join(report["dropped_partitions"]))
        return report

    def refresh_candles(self, start: datetime, end: datetime) -> None:
        """TimescaleDB: materialise candles for [start, end) now (after recovery upserts, in tests).
        PostgreSQL mode keeps candles current on every insert, so there is nothing to do."""
        if self.mode != "timescaledb":
            return
        from . import timescale

        with self.connect(autocommit=True) as conn:
            timescale.refresh_candles(conn, self.schema, start, end)

    # ------------------------------------------------------------------ reads
    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> pa.Table:
        """Ticks with start <= ts < end as TICK_SCHEMA, ordered by symbol, KST date, cum_volume."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("read_ticks needs timezone-aware datetimes (e.g. tickvault.model.kst_day_bounds)")
        symbol_filter = sql.SQL("")
        if symbols is not None:
            symbol_filter = sql.SQL("AND symbol = ANY({})").format(sql.Literal(list(symbols)))
        stmt = query("read_ticks.sql", self.schema, start=sql.Literal(start), end=sql.Literal(end), symbol_filter=symbol_filter)
        out = io.BytesIO()
        with self.connect(autocommit=True) as conn, conn.cursor() as cur:
            with cur.copy(stmt) as copy:
                for chunk in copy:
                    out.write(chunk)
        return csv_to_ticks(out.getvalue())

    def count_ticks(self, day: date) -> int:
        start, end = kst_day_bounds(day)
        with self.connect(autocommit=True) as conn:
            return int(conn.execute(query("count_ticks.sql", self.schema), {"start": start, "end": end}).fetchone()[0])

    def checkpoint(self, stream: str, group: str) -> str | None:
        """Last stream id committed for (stream, group), or None."""
        with self.connect(autocommit=True) as conn:
            row = conn.execute(query("checkpoint_get.sql", self.schema), {"stream": stream, "grp": group}).fetchone()
        return row[0] if row else None

    def status(self) -> dict[str, Any]:
        """Mode and extension version for `tickvault status`."""
        return {"mode": self.mode, "extension_version": self.extension_version, "schema": self.schema}

    def close(self) -> None:
        """Nothing pooled: every method opens and closes its own connection."""


_CSV_COLUMNS = ["symbol", "ts", "price", "volume", "cum_volume", "side", "source", "received_at"]
_CSV_TYPES = {
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
    """COPY ... (FORMAT csv) output of read_ticks.sql -> TICK_SCHEMA (exact decimals, UTC instants)."""
    if not data:
        return TICK_SCHEMA.empty_table()
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=_CSV_COLUMNS, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(column_types=_CSV_TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
    ts_type = TICK_SCHEMA.field("ts").type
    columns = []
    for field in TICK_SCHEMA:
        column = table.column(field.name)
        if field.name in ("ts", "received_at"):
            column = column.cast(ts_type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=TICK_SCHEMA)
