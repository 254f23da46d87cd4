"""The write path both HotSink.write and HotStore.upsert use.

One transaction per batch: binary COPY into a per-connection temp staging table, then one
INSERT ... ON CONFLICT DO NOTHING into ticks (in PostgreSQL mode the same statement folds
the rows it really added into the candles), then optionally the checkpoint upsert. Either
all of it commits or none of it does.
"""

from __future__ import annotations

import pyarrow as pa
import psycopg
from psycopg import sql

from .copy import encode_binary_copy
from .sqlfiles import query, sql_text

LEVELS = (("5m", "1m", "5 minutes"), ("1h", "5m", "1 hour"), ("1d", "1h", "1 day"))
#: Bucket origin of every candle level in both modes: 00:00 KST. 1m/5m/1h buckets then also
#: start at 09:00 KST (the open), and a 1d bucket is one KST trading date. TimescaleDB needs
#: one origin across a cagg hierarchy.
ORIGIN = "2000-01-03 00:00:00+09"


def postgres_write_sql(schema: str) -> sql.Composed:
    """pg_write.sql with the rollup/merge CTEs for every candle level filled in."""
    parts = [query("pg_merge.sql", schema, level=sql.SQL("1m"), table=sql.Identifier("candles_1m"))]
    for level, source, width in LEVELS:
        parts.append(
            query(
                "pg_rollup.sql",
                schema,
                level=sql.SQL(level),
                source=sql.SQL(source),
                width=sql.Literal(width) + sql.SQL("::interval"),
                origin=sql.SQL("TIMESTAMPTZ ") + sql.Literal(ORIGIN),
            )
        )
        parts.append(query("pg_merge.sql", schema, level=sql.SQL(level), table=sql.Identifier(f"candles_{level}")))
    return query("pg_write.sql", schema, rollups=sql.SQL(",\n").join(parts), origin=sql.SQL("TIMESTAMPTZ ") + sql.Literal(ORIGIN))


def timescale_write_sql(schema: str) -> sql.Composed:
    return query("ts_write.sql", schema)


def write_batch(
    conn: psycopg.Connection,
    schema: str,
    insert_sql: sql.Composed,
    batch: pa.Table,
    checkpoint: tuple[str, str, str] | None = None,
    params: dict | None = None,
) -> int:
    """Stage and insert ``batch`` (TICK_SCHEMA); returns the rows actually added."""
    payload = encode_binary_copy(batch)
    with conn.transaction():
        with conn.cursor() as cur:
            cur.execute(sql_text("stage.sql"))
            with cur.copy(sql_text("copy_stage.sql")) as copy:
                copy.write(payload)
            cur.execute(insert_sql, params)
            row = cur.fetchone() if cur.description else None
            added = int(row[0]) if row is not None else max(cur.rowcount, 0)
            if checkpoint is not None:
                stream, group, last_id = checkpoint
                cur.execute(query("checkpoint_upsert.sql", schema), {"stream": stream, "grp": group, "last_id": last_id})
    return added
