"""TimescaleDB mode: hypertable, hierarchical continuous aggregates and their policies.

Policy offsets (docs/hot-store.md explains them):

* late and recovered ticks may land only in chunks younger than ``compress_after_days``
  (older chunks are compressed, and upserts into compressed chunks are slow and were buggy);
* so every candle refresh window reaches back ``compress_after_days + 1`` days — it sees
  every change that can still happen, one chunk of margin included;
* and that window must stay short of the tick retention (a refresh over dropped chunks
  recomputes those buckets from nothing and silently deletes candle history) and of the
  retention of the level below. ``policy_plan`` refuses settings that break this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ...core.config import Settings
from ...core.errors import ConfigError
from ...core.wire import KST

if TYPE_CHECKING:
    from .store import HotStore

#: Bucket origin of every candle level in both modes: 00:00 KST. 1m/5m/1h buckets then also
#: start at 09:00 KST (the open), and a 1d bucket is one KST trading date. TimescaleDB needs
#: one origin across a cagg hierarchy.
ORIGIN = "2000-01-03 00:00:00+09"


class HotStoreError(ConfigError):
    """A configuration problem of the hot store the operator must fix (the message says how)."""


def origin() -> sql.Composable:
    return sql.SQL("TIMESTAMPTZ ") + sql.Literal(ORIGIN)

log = logging.getLogger(__name__)

#: level -> (bucket width = refresh end_offset, level below)
LEVELS: dict[str, tuple[timedelta, str | None]] = {
    "1m": (timedelta(minutes=1), None),
    "5m": (timedelta(minutes=5), "1m"),
    "1h": (timedelta(hours=1), "5m"),
    "1d": (timedelta(days=1), "1h"),
}
RETENTION_SCHEDULE = timedelta(days=1)
#: refresh each level every bucket width, but at least hourly, so late fills reach 1h/1d soon
MAX_REFRESH_SCHEDULE = timedelta(hours=1)
COMPRESSION_SCHEDULE = timedelta(hours=12)


@dataclass(frozen=True)
class Policy:
    relation: str  # table or cagg name inside the schema
    proc: str  # timescaledb_information.jobs.proc_name
    schedule: timedelta
    start_offset: timedelta | None = None
    end_offset: timedelta | None = None
    drop_after: timedelta | None = None
    compress_after: timedelta | None = None
    add_statement: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    def matches(self, row: tuple) -> bool:
        _, schedule, start, end, drop, compress = row
        return (schedule, start, end, drop, compress) == (
            self.schedule, self.start_offset, self.end_offset, self.drop_after, self.compress_after
        )


def refresh_window_days(settings: Settings) -> int:
    """How far back candle refreshes look: everything not yet compressed, plus a chunk of margin."""
    return settings.compress_after_days + 1


def policy_plan(settings: Settings) -> tuple[list[Policy], list[tuple[str, str]]]:
    """Desired policies, and (relation, proc) pairs that must have none. Raises on unsafe settings."""
    window = refresh_window_days(settings)
    limits = {"tick_retention_days": settings.tick_retention_days}
    for level in ("1m", "5m", "1h"):
        days = getattr(settings, f"candles_{level}_retention_days")
        if days is not None:
            limits[f"candles_{level}_retention_days"] = days
    for name, days in limits.items():
        if days <= window:
            raise HotStoreError(
                f"{name}={days} must be greater than compress_after_days+1={window}: candle refreshes look back "
                f"{window} days and would delete candle history of dropped data; raise {name.upper()} or lower compress_after_days"
            )
    start = timedelta(days=window)
    policies: list[Policy] = []
    absent: list[tuple[str, str]] = []
    for level, (width, _) in LEVELS.items():
        view = f"candles_{level}"
        schedule = min(width, MAX_REFRESH_SCHEDULE)
        policies.append(
            Policy(view, "policy_refresh_continuous_aggregate", schedule, start_offset=start, end_offset=width, add_statement="add_refresh_policy")
        )
        days = getattr(settings, f"candles_{level}_retention_days")
        if days is None:
            absent.append((view, "policy_retention"))
        else:
            policies.append(Policy(view, "policy_retention", RETENTION_SCHEDULE, drop_after=timedelta(days=days), add_statement="add_retention_policy"))
    policies.append(
        Policy("ticks", "policy_retention", RETENTION_SCHEDULE, drop_after=timedelta(days=settings.tick_retention_days), add_statement="add_retention_policy")
    )
    policies.append(
        Policy(
            "ticks", "policy_compression", COMPRESSION_SCHEDULE,
            compress_after=timedelta(days=settings.compress_after_days), add_statement="add_compression_policy",
        )
    )
    policies.append(
        Policy("metrics", "policy_retention", RETENTION_SCHEDULE, drop_after=timedelta(days=settings.metrics_retention_days),
               add_statement="add_retention_policy")
    )
    return policies, absent


def init_schema(conn: psycopg.Connection, store: HotStore) -> list[str]:
    """Create hypertables, caggs, compression and policies; idempotent. ``conn`` is autocommit.
    Returns what it changed (empty on a re-run with unchanged settings)."""
    schema = store.schema
    policies, absent = policy_plan(store.settings)
    conn.execute(store.sql("timescale", "lock_schema"), {"schema": schema})
    try:
        conn.execute(
            store.sql("schema", "timescale_tables", ticks_name=sql.Literal(f"{schema}.ticks"), metrics_name=sql.Literal(f"{schema}.metrics"))
        )
        conn.execute(store.sql("timescale", "candles_1m", origin=origin()))
        for level, (width, below) in LEVELS.items():
            if below is not None:
                conn.execute(
                    store.sql(
                        "timescale", "candles_level",
                        view=sql.Identifier(f"candles_{level}"), source=sql.Identifier(f"candles_{below}"),
                        width=sql.Literal(width), origin=origin(),
                    )
                )
            conn.execute(store.sql("timescale", "realtime", view=sql.Identifier(f"candles_{level}")))
        if not conn.execute(store.sql("timescale", "compression_enabled"), {"schema": schema}).fetchone()[0]:
            conn.execute(store.sql("timescale", "enable_compression"))
        return _sync_policies(conn, store, policies, absent)
    finally:
        conn.execute(store.sql("timescale", "unlock_schema"), {"schema": schema})


def _jobs(conn: psycopg.Connection, store: HotStore, relation: str, proc: str) -> list[tuple]:
    return conn.execute(store.sql("timescale", "find_policy"), {"schema": store.schema, "relation": relation, "proc": proc}).fetchall()


def _sync_policies(conn: psycopg.Connection, store: HotStore, policies: list[Policy], absent: list[tuple[str, str]]) -> list[str]:
    changed = []
    remove = store.sql("timescale", "remove_policy")
    for relation, proc in absent:
        for row in _jobs(conn, store, relation, proc):
            conn.execute(remove, {"job_id": row[0]})
            changed.append(f"removed {proc} on {relation}")
    for policy in policies:
        rows = _jobs(conn, store, policy.relation, policy.proc)
        if len(rows) == 1 and policy.matches(rows[0]):
            continue
        for row in rows:
            conn.execute(remove, {"job_id": row[0]})
        conn.execute(store.sql("timescale", policy.add_statement), {
            "relation": f"{store.schema}.{policy.relation}",
            "schedule": policy.schedule,
            "start_offset": policy.start_offset,
            "end_offset": policy.end_offset,
            "drop_after": policy.drop_after,
            "compress_after": policy.compress_after,
        })
        changed.append(f"{'updated' if rows else 'added'} {policy.proc} on {policy.relation}")
    if changed:
        log.info("hot (timescaledb) policies: %s", "; ".join(changed))
    return changed


def migrate_v2(conn: psycopg.Connection, store: HotStore) -> None:
    """Schema 1 -> 2 in TimescaleDB mode, inside init's transaction: decompress the ticks (a new
    unique key and segmentby cannot be set on compressed chunks), keep each venue-less candle
    view frozen as history (``candles_<level>_v1``: no jobs, materialized rows only) and move the
    ticks to the new key. ``init_schema`` then creates the per-venue views and re-enables
    compression and the policies."""
    schema = store.schema
    conn.execute(store.sql("timescale", "decompress_all", ticks_name=sql.Literal(f"{schema}.ticks")))
    for level in reversed(LEVELS):
        view = f"candles_{level}"
        if not store.relation_exists(conn, view):
            continue
        for proc in ("policy_refresh_continuous_aggregate", "policy_retention"):
            for row in _jobs(conn, store, view, proc):
                conn.execute(store.sql("timescale", "remove_policy"), {"job_id": row[0]})
        conn.execute(store.sql("timescale", "materialized_only", view=sql.Identifier(view)))
        conn.execute(store.sql("timescale", "retire_cagg", view=sql.Identifier(view), retired=sql.Identifier(f"{view}_v1")))
    conn.execute(store.sql("timescale", "migrate_ticks_v2"))


def refresh_candles(conn: psycopg.Connection, store: HotStore, start: datetime, end: datetime) -> None:
    """Materialise every level, bottom up, for [start, end) widened to whole KST days.

    Never call it over days whose ticks retention has dropped: the refresh would recompute
    those buckets from nothing and delete their history."""
    lo = start.astimezone(KST).replace(hour=0, minute=0, second=0, microsecond=0)
    hi = end.astimezone(KST).replace(hour=0, minute=0, second=0, microsecond=0)
    if hi < end:
        hi += timedelta(days=1)
    if hi <= lo:
        hi = lo + timedelta(days=1)
    for level in LEVELS:
        conn.execute(store.sql("timescale", "refresh"), {"relation": f"{store.schema}.candles_{level}", "start": lo, "end": hi})
