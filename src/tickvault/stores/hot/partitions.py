"""PostgreSQL mode: one range partition of ``ticks`` per KST day, created on demand and
dropped whole for retention (no DELETE, no bloat). There is deliberately no default
partition: a row without its day's partition fails loudly and the batch is retried after
the partition is created, instead of landing somewhere retention would never drop.

Every valid tick has a place: any role that writes creates its day's partition on demand
through ``tickvault_create_partition`` (installed by init, SECURITY DEFINER, EXECUTE granted
to the writer role), so a tick of a past day — older than ``init`` or already dropped by
retention — never waits for the owner. A day older than the retention is stored until the
next ``maintain`` drops it again; the lake keeps it for good (docs/hot-store.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
from psycopg import sql

from ...core.calendar import trading_date, trading_dates, trading_day_bounds
from ...core.errors import StoreError

if TYPE_CHECKING:
    from .store import HotStore

NAME_RE = re.compile(r"^ticks_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"ticks_p{day:%Y%m%d}"


def batch_days(batch: pa.Table) -> set[date]:
    """The trading dates of a batch's ``ts``: the partitions its rows go to."""
    return trading_dates(batch.column("ts"))


def existing_days(conn: psycopg.Connection, store: HotStore) -> set[date]:
    rows = conn.execute(store.sql("partitions", "list_partitions"), {"parent": f'"{store.schema}".ticks'}).fetchall()
    days = set()
    for (name,) in rows:
        match = NAME_RE.match(name)
        if match:
            days.add(datetime.strptime(match.group(1), "%Y%m%d").date())
    return days


def _lock_key(schema: str) -> sql.Literal:
    return sql.Literal(f"tickvault.partitions.{schema}")


def install_function(conn: psycopg.Connection, store: HotStore) -> None:
    """(Re)create ``tickvault_create_partition``; init runs it as the owner."""
    conn.execute(store.sql("partitions", "partition_function", lock_key=_lock_key(store.schema),
                           schema_name=sql.Literal(store.schema)))


def create_days(conn: psycopg.Connection, store: HotStore, days: Iterable[date]) -> None:
    """Create the missing day partitions, each in its own short transaction."""
    stmt = store.sql("partitions", "create_partition")
    for day in sorted(days):
        lo, hi = trading_day_bounds(day)
        try:
            with conn.transaction():
                conn.execute(stmt, {"day": day, "lo": lo, "hi": hi})
        except psycopg.errors.UndefinedFunction as exc:
            raise StoreError(
                f"no tick partition for KST day {day} and schema {store.schema} has no partition function yet; "
                "run `tickvault init --roles` once as the schema owner (it installs it and grants it to the writer)"
            ) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreError(
                f"no tick partition for KST day {day} and this role may not run the partition function; "
                "run `tickvault init --roles` as the schema owner (it grants it to pg_writer_role)"
            ) from exc


def expired_days(days: Iterable[date], now: datetime, retention_days: int) -> list[date]:
    """Days whose whole range ended more than ``retention_days`` ago (TimescaleDB's drop_after rule)."""
    cutoff = now - timedelta(days=retention_days)
    return sorted(day for day in days if trading_day_bounds(day)[1] <= cutoff)


def drop_days(conn: psycopg.Connection, store: HotStore, days: Iterable[date]) -> list[str]:
    dropped = []
    for day in sorted(days):
        name = partition_name(day)
        with conn.transaction():
            conn.execute(store.sql("partitions", "drop_partition", lock_key=_lock_key(store.schema), partition=sql.Identifier(name)))
        dropped.append(name)
    return dropped


def today_kst(now: datetime) -> date:
    return trading_date(now)
