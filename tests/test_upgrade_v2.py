"""`tickvault init` upgrades an installation written by the previous version (schema 1, no venue)
to schema 2 (venue in the natural key): zero ticks lost, zero duplicated, `_NX` rows become NXT.

The stores of the previous version are built with its own SQL, kept verbatim in
tests/legacy/v1/ (the statements the code before this change ran), on real PostgreSQL (and
TimescaleDB when TICKVAULT_TEST_TSDB_URL is set) and a real DuckLake lake.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.wire import KST, UTC, Tick, ticks_to_table
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake, open_connection
from tickvault.stores.sqlfiles import Statement, parse

LEGACY = Path(__file__).parent / "legacy" / "v1"
DAY = date(2026, 11, 20)


def legacy(store: str, file: str) -> dict[str, Statement]:
    return parse((LEGACY / store / f"{file}.sql").read_text(encoding="utf-8"), f"legacy {store}/{file}.sql")


def v1_rows() -> list[tuple[str, datetime, Decimal, int, int]]:
    """(symbol as the old version stored it, ts, price, volume, cum_volume): KRX 005930 and
    000660, and NXT 005930 stored under Kiwoom's `005930_NX`, one of whose trades shares
    (ts, cum_volume) with a KRX trade — two trades that only the venue tells apart."""
    start = datetime(2026, 11, 20, 9, 0, tzinfo=KST)
    rows = []
    for symbol, n, step in (("005930", 40, 1), ("000660", 25, 2), ("005930_NX", 30, 1)):
        cum = 0
        for i in range(n):
            volume = 1 + i % 5
            cum += volume
            rows.append((symbol, start + timedelta(seconds=i * step), Decimal(60000 + i * 10), volume, cum))
    return rows


def expected_keys() -> set[tuple[str, str, datetime, int]]:
    out = set()
    for symbol, ts, _price, _volume, cum in v1_rows():
        venue, code = ("NXT", symbol[:6]) if symbol.endswith("_NX") else ("KRX", symbol)
        out.add((venue, code, ts.astimezone(UTC), cum))
    return out


def keys_of(table) -> set[tuple[str, str, datetime, int]]:
    return set(zip(*(table.column(c).to_pylist() for c in ("venue", "symbol", "ts", "cum_volume"))))


def v2_batch() -> object:
    """The same trades as the new version would receive them, for the idempotency check."""
    ticks = []
    for symbol, ts, price, volume, cum in v1_rows():
        venue, code = ("NXT", symbol[:6]) if symbol.endswith("_NX") else ("KRX", symbol)
        ticks.append(Tick(code, ts.astimezone(UTC), price, volume, cum, None, "sim", None, venue))
    return ticks_to_table(ticks)


# ------------------------------------------------------------------------- the hot store
def build_v1_hot(url: str, schema: str, mode: str) -> None:
    """Schema, tables, candles and a few ticks exactly as the previous version made them."""
    schema_sql = legacy("hot", "schema")
    ident = sql.Identifier(schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema_sql["common_tables"].postgres(schema=ident))
        conn.execute(schema_sql["set_meta"].postgres(schema=ident), {"key": "mode", "value": mode})
        if mode == "postgres":
            conn.execute(schema_sql["postgres_tables"].postgres(schema=ident))
            lo, hi = trading_day_bounds(DAY)
            conn.execute(sql.SQL("CREATE TABLE {}.ticks_p20261120 PARTITION OF {}.ticks FOR VALUES FROM ({}) TO ({})").format(
                ident, ident, sql.Literal(lo), sql.Literal(hi)))
        else:
            conn.execute(schema_sql["timescale_tables"].postgres(
                schema=ident, ticks_name=sql.Literal(f"{schema}.ticks"), metrics_name=sql.Literal(f"{schema}.metrics")))
            ts_sql = legacy("hot", "timescale")
            origin = sql.SQL("TIMESTAMPTZ '2000-01-03 00:00:00+09'")
            conn.execute(ts_sql["candles_1m"].postgres(schema=ident, origin=origin))
            for level, width, below in (("5m", "5 minutes", "1m"), ("1h", "1 hour", "5m"), ("1d", "1 day", "1h")):
                conn.execute(ts_sql["candles_level"].postgres(
                    schema=ident, view=sql.Identifier(f"candles_{level}"), source=sql.Identifier(f"candles_{below}"),
                    width=sql.Literal(width) + sql.SQL("::interval"), origin=origin))
            conn.execute(ts_sql["enable_compression"].postgres(schema=ident))
        for table in ("integrity_report", "recovery_report"):
            conn.execute(schema_sql[f"{table}_table"].postgres(schema=ident))
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {}.ticks (symbol, ts, price, volume, cum_volume, side, source) "
                        "VALUES (%s, %s, %s, %s, %s, NULL, 'sim')").format(ident),
                v1_rows(),
            )
        conn.execute(sql.SQL("INSERT INTO {}.integrity_report VALUES (%s, '005930_NX', 30, 90, 0, 0, 0, 0, 0, 'ok', now())").format(ident),
                     (DAY,))
        if mode == "postgres":  # candles as the old write path folded them, for one symbol of each venue
            conn.execute(sql.SQL(
                "INSERT INTO {}.candles_1m SELECT date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-03 00:00:00+09'), symbol, "
                "min(price), max(price), min(price), max(price), sum(volume), count(*), sum(price*volume), min(price), "
                "min(cum_volume), max(cum_volume) FROM {}.ticks GROUP BY 1, 2").format(ident, ident))
        else:
            conn.execute(sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(sql.Literal(f"{schema}.candles_1m")))
            conn.execute(sql.SQL("SELECT compress_chunk(c) FROM show_chunks({}) c").format(sql.Literal(f"{schema}.ticks")))


def check_hot_upgraded(settings: Settings) -> None:
    store = HotStore(settings)
    try:
        assert store.schema_version() == 1
        store.init()
        assert store.schema_version() == 2
        start, end = trading_day_bounds(DAY)
        stored = store.read_ticks(start, end)
        assert stored.num_rows == len(v1_rows()), "the upgrade lost or duplicated ticks"
        assert keys_of(stored) == expected_keys()
        assert store.upsert(v2_batch()) == 0  # the new key recognises every upgraded tick
        assert sorted(store.symbols_of_day(DAY)) == [("KRX", "000660"), ("KRX", "005930"), ("NXT", "005930")]
        assert [(r["venue"], r["symbol"]) for r in store.read_integrity_report(DAY)] == [("NXT", "005930")]
        store.init()  # a second init changes nothing
        assert store.read_ticks(start, end).num_rows == len(v1_rows())
        by_venue = store.candles("1d", start, end, ["005930"], session="extended", venue="NXT")
        assert by_venue.column("volume").to_pylist() == [sum(v for s, _, _, v, _ in v1_rows() if s == "005930_NX")]
    finally:
        store.close()


def test_postgres_mode_store_of_the_previous_version_is_upgraded(settings: Settings) -> None:
    build_v1_hot(settings.pg_dsn, settings.pg_schema, "postgres")
    check_hot_upgraded(settings)
    with psycopg.connect(settings.pg_dsn) as conn:  # the maintained candles moved too
        rows = conn.execute(sql.SQL("SELECT DISTINCT venue, symbol FROM {}.candles_1m ORDER BY 1, 2").format(
            sql.Identifier(settings.pg_schema))).fetchall()
    assert rows == [("KRX", "000660"), ("KRX", "005930"), ("NXT", "005930")]


def test_timescaledb_mode_store_of_the_previous_version_is_upgraded(tsdb_settings: Settings) -> None:
    build_v1_hot(tsdb_settings.pg_dsn, tsdb_settings.pg_schema, "timescaledb")
    check_hot_upgraded(tsdb_settings)
    store = HotStore(tsdb_settings)
    try:
        start, end = trading_day_bounds(DAY)
        store.refresh_candles(start, end)
        with store.connection() as conn:
            ident = sql.Identifier(tsdb_settings.pg_schema)
            per_venue = conn.execute(sql.SQL("SELECT venue, symbol, sum(volume) FROM {}.candles_1d GROUP BY 1, 2 ORDER BY 1, 2")
                                     .format(ident)).fetchall()
            retired = conn.execute(sql.SQL("SELECT count(*) FROM {}.candles_1m_v1").format(ident)).fetchone()[0]
    finally:
        store.close()
    volumes = {}
    for symbol, _ts, _p, volume, _c in v1_rows():
        key = ("NXT", symbol[:6]) if symbol.endswith("_NX") else ("KRX", symbol)
        volumes[key] = volumes.get(key, 0) + volume
    assert [((v, s), int(n)) for v, s, n in per_venue] == sorted(volumes.items())
    assert retired > 0  # the venue-less history is kept, frozen, under its old name + _v1


# ------------------------------------------------------------------------- the lake
@pytest.fixture
def v1_lake(settings: Settings) -> Settings:
    """A lake created and written by the previous version's statements."""
    schema_sql, write_sql = legacy("lake", "schema"), legacy("lake", "write")
    con = open_connection(settings.lake_dir)
    try:
        for statement in schema_sql["create_tables"].split():
            con.execute(statement.duckdb())
        for statement in schema_sql["layout"].split():
            con.execute(statement.duckdb())
        import pyarrow as pa

        rows = v1_rows()
        batch = pa.table({
            "symbol": [r[0] for r in rows], "ts": [r[1].astimezone(UTC) for r in rows], "price": [r[2] for r in rows],
            "volume": [r[3] for r in rows], "cum_volume": [r[4] for r in rows], "side": [None] * len(rows),
            "source": ["sim"] * len(rows), "received_at": [None] * len(rows),
        }, schema=pa.schema([("symbol", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("price", pa.decimal128(18, 4)),
                             ("volume", pa.int64()), ("cum_volume", pa.int64()), ("side", pa.string()), ("source", pa.string()),
                             ("received_at", pa.timestamp("us", tz="UTC"))]))
        con.register("tv_batch", batch)
        first, last = min(r[1] for r in rows), max(r[1] for r in rows)
        con.execute(write_sql["insert_new"].duckdb(), {"first_day": DAY, "last_day": DAY, "first_ts": first, "last_ts": last})
        con.execute(write_sql["set_checkpoint"].duckdb(), {"stream": settings.stream, "group": "cold", "last_id": "7-0"})
    finally:
        con.close()
    return settings


def test_lake_of_the_previous_version_is_upgraded(v1_lake: Settings) -> None:
    with Lake(v1_lake) as lake:
        assert lake.schema_version() == 1
        before = lake.snapshot_id()
        lake.init()
        assert lake.schema_version() == 2
        start, end = trading_day_bounds(DAY)
        stored = lake.read_ticks(start, end)
        assert stored.num_rows == len(v1_rows()), "the upgrade lost or duplicated ticks"
        assert keys_of(stored) == expected_keys()
        assert lake.upsert(v2_batch()) == 0
        assert lake.checkpoint(v1_lake.stream, "cold") == "7-0"
        assert lake.read_ticks(start, end, as_of=before).num_rows == len(v1_rows())  # the state before stays readable
        assert sorted(lake.symbols_of_day(DAY)) == [("KRX", "000660"), ("KRX", "005930"), ("NXT", "005930")]
        lake.init()  # idempotent
        assert lake.read_ticks(start, end).num_rows == len(v1_rows())
