"""PostgreSQL mode: one range partition of ``ticks`` per KST day, created on demand and
dropped whole for retention (no DELETE, no bloat). There is deliberately no default
partition: a row without its day's partition fails loudly and the batch is retried after
the partition is created, instead of landing somewhere retention would never drop."""

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


def create_days(conn: psycopg.Connection, store: HotStore, days: Iterable[date]) -> None:
    """Create the missing day partitions, each in its own short transaction."""
    for day in sorted(days):
        lo, hi = trading_day_bounds(day)
        stmt = store.sql(
            "partitions",
            "create_partition",
            lock_key=_lock_key(store.schema),
            partition=sql.Identifier(partition_name(day)),
            lo=sql.Literal(lo),
            hi=sql.Literal(hi),
        )
        try:
            with conn.transaction():
                conn.execute(stmt)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreError(
                f"no tick partition for KST day {day} and this role may not create it; "
                "run `tickvault maintain` (or `tickvault init`) as the schema owner, or raise partitions_ahead_days"
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
