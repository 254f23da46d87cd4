"""The integrity report: one row per (date, symbol) in both stores after every reconcile.

The same rows go to the hot table ``<schema>.integrity_report`` and the lake table
``lake.integrity_report`` (so either store alone still tells the day's story). Repair counts
accumulate over the day's runs; everything else is the latest state. Tables are created
here, idempotently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa
from psycopg import sql

from ...stores.hot.ddl import ensure_table

from .report import VerifyReport
from .sides import HotSide, LakeSide, Side, split_statements, sql_text, store_errors

log = logging.getLogger(__name__)
UTC = timezone.utc

INTEGRITY_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
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


def status_of(row: dict[str, Any], differs: bool) -> str:
    """ok | repaired | gaps | differs | duplicates — the worst thing true of the symbol."""
    if row["duplicates"]:
        return "duplicates"
    if differs:
        return "differs"
    if row["gaps"]:
        return "gaps"
    if row["repaired_hot"] or row["repaired_cold"]:
        return "repaired"
    return "ok"


def integrity_rows(after: VerifyReport, scans: Sequence[Any], added_by_symbol: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Rows for the report from the final scans. ticks/volume: the larger of the two stores
    (equal once consistent); gaps: gaps of the union (trades neither store holds)."""
    per: dict[str, dict[str, Any]] = {}
    for result in scans:
        totals: dict[str, list[int]] = {}
        for (symbol, _minute), stats in result.minutes.items():
            t = totals.setdefault(symbol, [0, 0])
            t[0] += stats.ticks
            t[1] += stats.volume
        for symbol, (ticks, volume) in totals.items():
            row = per.setdefault(symbol, _empty(after.day, symbol, after.checked_at))
            row["ticks"] = max(row["ticks"], ticks)
            row["volume"] = max(row["volume"], volume)
        for symbol, n in result.duplicates_by_symbol.items():
            per.setdefault(symbol, _empty(after.day, symbol, after.checked_at))["duplicates"] += n
    for gap in after.gaps:
        row = per.setdefault(gap.symbol, _empty(after.day, gap.symbol, after.checked_at))
        row["gaps"] += 1
        row["missing_volume"] += gap.missing_volume
    for symbol, added in added_by_symbol.items():
        row = per.setdefault(symbol, _empty(after.day, symbol, after.checked_at))
        row["repaired_hot"] += added.get("hot", 0)
        row["repaired_cold"] += added.get("cold", 0)
    differing = {d.symbol for d in after.differences}
    for symbol, row in per.items():
        row["status"] = status_of(row, symbol in differing)
    return [per[s] for s in sorted(per)]


def _empty(day: date, symbol: str, checked_at: datetime) -> dict[str, Any]:
    return {
        "day": day, "symbol": symbol, "ticks": 0, "volume": 0, "gaps": 0, "missing_volume": 0, "duplicates": 0,
        "repaired_hot": 0, "repaired_cold": 0, "status": "ok", "checked_at": checked_at,
    }


def create_hot_table(conn: Any, schema: str) -> None:
    """<schema>.integrity_report, if missing (`tickvault init` creates it as the owner)."""
    table = sql.Identifier(schema, "integrity_report")
    ensure_table(conn, schema, "integrity_report", sql.SQL(sql_text("hot_integrity_create")).format(table=table))


def write_hot(side: HotSide, rows: list[dict[str, Any]]) -> None:
    table = side.table("integrity_report")
    with side.store.connect() as conn:
        create_hot_table(conn, side.settings.pg_schema)
        with conn.cursor() as cur:
            cur.executemany(sql.SQL(sql_text("hot_integrity_upsert")).format(table=table), rows)


def ensure_lake_table(side: LakeSide) -> None:
    """Create lake.integrity_report if missing (call with the lake's writer lock held)."""
    side.execute("create lake.integrity_report", sql_text("lake_integrity_create"))


COMPARED = ("ticks", "volume", "gaps", "missing_volume", "duplicates", "status")


def unchanged(stored: list[dict[str, Any]], rows: list[dict[str, Any]]) -> bool:
    """True when writing ``rows`` would change nothing but ``checked_at`` (no repairs either)."""
    by_symbol = {r["symbol"]: r for r in stored}
    for row in rows:
        old = by_symbol.get(row["symbol"])
        if old is None or row["repaired_hot"] or row["repaired_cold"]:
            return False
        status = "repaired" if row["status"] == "ok" and (old["repaired_hot"] or old["repaired_cold"]) else row["status"]
        if any(old[k] != (status if k == "status" else row[k]) for k in COMPARED):
            return False
    return True


def write_lake(side: LakeSide, rows: list[dict[str, Any]]) -> None:
    """Each lake write is a commit with new files, so a run that changed nothing (the usual
    scheduled reconcile) leaves the lake's rows as they are; the hot rows carry checked_at."""
    from ...stores.lake.writelock import writer_lock

    batch = pa.Table.from_pylist(rows, schema=INTEGRITY_SCHEMA)
    with writer_lock(side.lake.lake_dir):  # the lake's writers are serialised (lake/writelock.py)
        ensure_lake_table(side)
        if unchanged(read_integrity_report(side, rows[0]["day"]), rows):
            return

        def transaction() -> None:
            con = side.connection()
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("integrity_rows", batch)
                for statement in split_statements(sql_text("lake_integrity_replace")):
                    con.execute(statement)
                con.execute("COMMIT")
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except Exception:  # noqa: BLE001 - the original error matters
                    pass
                raise
            finally:
                con.unregister("integrity_rows")

        from ...stores.lake import retry_locked

        retry_locked("write lake.integrity_report", transaction)


def write_integrity_report(hot: Side, cold: Side, day: date, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Write the rows to both stores; a store that is down is reported, not fatal."""
    result: dict[str, str] = {}
    if not rows:
        return {"hot": "no rows", "cold": "no rows"}
    for side, writer in ((hot, write_hot), (cold, write_lake)):
        try:
            writer(side, rows)  # type: ignore[arg-type]
            result[side.name] = "ok"
        except store_errors() as exc:
            log.error("integrity report for %s not written to the %s store: %s", day, side.name, exc)
            result[side.name] = f"{type(exc).__name__}: {exc}"
    return result


def read_integrity_report(side: Side, day: date) -> list[dict[str, Any]]:
    """The stored rows of one day (tests, status)."""
    if isinstance(side, HotSide):
        with side.store.connect() as conn:
            cur = conn.execute(
                sql.SQL("SELECT * FROM {} WHERE day = %s ORDER BY symbol").format(side.table("integrity_report")), [day]
            )
            names = [d.name for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
    assert isinstance(side, LakeSide)
    cur = side.execute("read lake.integrity_report", "SELECT * FROM lake.integrity_report WHERE day = $day ORDER BY symbol", {"day": day})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]
