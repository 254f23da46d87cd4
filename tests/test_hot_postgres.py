"""Hot store, PostgreSQL mode, against a real PostgreSQL (the `settings` fixture's own schema)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest

from factories import day_ticks
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.errors import StoreError, StoreNotInitialized
from tickvault.core.wire import KST, TICK_SCHEMA, UTC, Tick, ticks_to_table
from tickvault.stores.contract import StreamPosition
from tickvault.stores.hot import HotStore, HotStoreError
from tickvault.stores.hot.partitions import partition_name
from truth import stored_candles

DAY = date(2026, 11, 20)


@pytest.fixture
def store(settings):
    hot = HotStore(settings)
    hot.init()
    yield hot
    hot.close()


def partitions_of(store: HotStore) -> set[str]:
    with store.connect() as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
            (f"{store.schema}.ticks",),
        ).fetchall()
    return {r[0] for r in rows}


def test_init_twice_is_idempotent_and_records_mode(settings):
    first = HotStore(settings)
    first.init()
    with first.connect() as conn:
        before = conn.execute(
            "SELECT relname, relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = %s ORDER BY 1",
            (settings.pg_schema,),
        ).fetchall()
    again = HotStore(settings)
    again.init()
    with again.connect() as conn:
        after = conn.execute(
            "SELECT relname, relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = %s ORDER BY 1",
            (settings.pg_schema,),
        ).fetchall()
        recorded = conn.execute(f"SELECT value FROM {settings.pg_schema}.hot_meta WHERE key = 'mode'").fetchone()[0]
    assert before == after
    names = {name for name, _ in after}
    assert {"ticks", "ingest_checkpoint", "candles_1m", "candles_5m", "candles_1h", "candles_1d", "metrics"} <= names
    assert again.mode == recorded == "postgres"


def test_schema_refuses_to_switch_mode(settings):
    HotStore(settings).init()
    forced = HotStore(settings.model_copy(update={"hot_mode": "timescaledb"}))
    with pytest.raises(HotStoreError, match="created in postgres mode"):
        forced.init()


def test_upsert_is_idempotent_by_natural_key(store):
    ticks = day_ticks(DAY, ["005930", "000660"], 300)
    batch = ticks_to_table(ticks)
    assert store.upsert(batch) == 600
    assert store.upsert(batch) == 0
    # half old, half new: only the new half counts
    more = day_ticks(DAY, ["035420"], 300, seed=7)
    assert store.upsert(ticks_to_table(ticks[:300] + more)) == 300
    assert store.count_ticks(DAY) == 900
    # duplicates inside one batch are stored once
    dup = day_ticks(DAY, ["051910"], 50, seed=3)
    assert store.upsert(ticks_to_table(dup + dup)) == 50
    assert store.count_ticks(DAY) == 950


def test_sink_write_records_checkpoint_and_keeps_the_highest_id(store, settings):
    store.init()
    ticks = day_ticks(DAY, ["005930"], 100)
    assert store.write(ticks_to_table(ticks[:50]), StreamPosition(settings.stream, "hot", "1700000000000-5")) == 50
    assert store.checkpoint(settings.stream, "hot") == "1700000000000-5"
    # a redelivered, older batch (XAUTOCLAIM) adds nothing and never moves the checkpoint back
    assert store.write(ticks_to_table(ticks[:10]), StreamPosition(settings.stream, "hot", "1699999999999-9")) == 0
    assert store.checkpoint(settings.stream, "hot") == "1700000000000-5"
    assert store.write(ticks_to_table(ticks[50:]), StreamPosition(settings.stream, "hot", "1700000000000-12")) == 50
    assert store.checkpoint(settings.stream, "hot") == "1700000000000-12"
    assert store.checkpoint(settings.stream, "cold") is None
    store.close()


def test_checkpoint_and_ticks_commit_together(store, settings):
    """Make the checkpoint statement fail after the ticks were inserted: nothing may remain."""
    store.init()
    with store.connect() as conn:
        conn.execute(
            f"""CREATE FUNCTION {settings.pg_schema}.boom() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN IF NEW.last_id = '9-9' THEN RAISE EXCEPTION 'checkpoint refused'; END IF; RETURN NEW; END $$;
                CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON {settings.pg_schema}.ingest_checkpoint
                FOR EACH ROW EXECUTE FUNCTION {settings.pg_schema}.boom();"""
        )
    ticks = ticks_to_table(day_ticks(DAY, ["005930"], 200))
    with pytest.raises(StoreError, match="checkpoint refused") as refused:
        store.write(ticks, StreamPosition(settings.stream, "hot", "9-9"))
    assert isinstance(refused.value.__cause__, psycopg.errors.RaiseException)
    assert store.count_ticks(DAY) == 0
    assert store.checkpoint(settings.stream, "hot") is None
    with store.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {settings.pg_schema}.candles_1m").fetchone()[0] == 0
    # the retry (same batch, working checkpoint) stores everything exactly once
    assert store.write(ticks, StreamPosition(settings.stream, "hot", "10-1")) == 200
    assert store.count_ticks(DAY) == 200
    assert store.checkpoint(settings.stream, "hot") == "10-1"
    store.close()


def test_partitions_created_on_demand_and_ahead(store, settings):
    today = datetime.now(UTC).astimezone(KST).date()
    ahead = {partition_name(today + timedelta(days=i)) for i in range(settings.partitions_ahead_days + 1)}
    assert ahead <= partitions_of(store)
    old, future = date(2025, 3, 4), today + timedelta(days=settings.partitions_ahead_days + 5)
    batch = ticks_to_table(day_ticks(old, ["005930"], 20) + day_ticks(DAY, ["005930"], 20) + day_ticks(future, ["005930"], 20))
    assert store.write(batch) == 60  # write, not upsert: conform refuses ticks more than a day ahead
    got = partitions_of(store)
    assert {partition_name(old), partition_name(DAY), partition_name(future)} <= got
    # a tick at 23:59:59 KST belongs to its KST day's partition, 00:00 KST to the next
    edge = [
        Tick("005930", datetime(2026, 1, 5, 23, 59, 59, tzinfo=KST), Decimal(100), 1, 1, None, "sim"),
        Tick("005930", datetime(2026, 1, 6, 0, 0, 0, tzinfo=KST), Decimal(100), 1, 2, None, "sim"),
    ]
    assert store.upsert(ticks_to_table(edge)) == 2
    with store.connect() as conn:
        rows = conn.execute(
            f"SELECT tableoid::regclass::text, cum_volume FROM {settings.pg_schema}.ticks WHERE ts >= '2026-01-05' AND ts < '2026-01-07' ORDER BY 2"
        ).fetchall()
    assert [r[0].split(".")[-1] for r in rows] == ["ticks_p20260105", "ticks_p20260106"]
    # no default partition: every partition is a day partition
    assert all(name.startswith("ticks_p") for name in partitions_of(store))


def test_partition_dropped_elsewhere_is_recreated_on_retry(store, settings):
    assert store.upsert(ticks_to_table(day_ticks(DAY, ["005930"], 10))) == 10
    with store.connect() as conn:
        conn.execute(f"DROP TABLE {settings.pg_schema}.{partition_name(DAY)}")
    batch = ticks_to_table(day_ticks(DAY, ["005930"], 10))
    with pytest.raises(StoreError, match="no partition"):
        store.upsert(batch)  # the cached partition list is stale: loud failure, nothing stored
    assert store.upsert(batch) == 10  # the retry re-reads partitions and creates the day


def test_retention_drops_whole_old_partitions_and_keeps_long_lived_candles(store, settings):
    now = datetime.now(UTC)
    very_old = (now - timedelta(days=400)).astimezone(KST).date()
    old = (now - timedelta(days=31)).astimezone(KST).date()
    recent = (now - timedelta(days=29)).astimezone(KST).date()
    # the old days' ticks arrived while they were inside the retention (candles were built)
    long_memory = HotStore(settings.model_copy(update={"tick_retention_days": 1000}))
    ticks = {day: day_ticks(day, ["005930"], 30, seed=day.toordinal()) for day in (very_old, old, recent)}
    for day_of_ticks in ticks.values():
        assert long_memory.upsert(ticks_to_table(day_of_ticks)) == 30
    with store.connect() as conn:
        conn.execute(
            f"INSERT INTO {settings.pg_schema}.metrics (ts, name, value) VALUES (%s, 'x', 1), (%s, 'x', 2)",
            (now - timedelta(days=31), now - timedelta(days=1)),
        )
        candles_before = {level: stored_candles(conn, settings.pg_schema, level) for level in ("1m", "5m", "1h", "1d")}
    report = store.maintain(now=now)
    assert sorted(report["dropped_partitions"]) == sorted([partition_name(very_old), partition_name(old)])
    assert partition_name(recent) in partitions_of(store)
    assert store.count_ticks(old) == 0 and store.count_ticks(very_old) == 0
    assert store.count_ticks(recent) == 30
    with store.connect() as conn:
        def days_in(level: str) -> set[date]:
            rows = conn.execute(f"SELECT DISTINCT (bucket AT TIME ZONE 'Asia/Seoul')::date FROM {settings.pg_schema}.candles_{level}").fetchall()
            return {r[0] for r in rows}

        # 1m candles are kept 365 days; 5m/1h/1d forever (the defaults)
        assert days_in("1m") == {old, recent}
        assert days_in("1h") == {very_old, old, recent}
        assert days_in("1d") == {very_old, old, recent}
        assert stored_candles(conn, settings.pg_schema, "1d") == candles_before["1d"]
        assert conn.execute(f"SELECT array_agg(value) FROM {settings.pg_schema}.metrics").fetchone()[0] == [2.0]
    assert store.maintain(now=now)["dropped_partitions"] == []
    # a replay of a dropped day stores its ticks again (until the next maintenance) but must not
    # count them twice in the candles that outlived them
    assert store.upsert(ticks_to_table(ticks[old])) == 30
    with store.connect() as conn:
        for level in ("5m", "1h", "1d"):
            assert stored_candles(conn, settings.pg_schema, level) == candles_before[level], level
    assert store.maintain(now=now)["dropped_partitions"] == [partition_name(old)]


def test_exact_decimal_and_null_round_trip(store):
    prices = ["0.0001", "1234.5678", "99999999999999.9999", "62700", "0.1", "1995"]
    base = datetime(2026, 11, 20, 9, 0, 1, tzinfo=KST)
    ticks = [
        Tick("00593" + str(i), base, Decimal(p), 1 + i, 10 + i, side, "sim", received)
        for i, (p, side, received) in enumerate(
            zip(prices, ["B", "S", None, "B", None, "S"], [base, None, base + timedelta(microseconds=123457), None, base, None])
        )
    ]
    batch = ticks_to_table(ticks)
    assert store.upsert(batch) == len(ticks)
    got = store.read_ticks(*trading_day_bounds(DAY))
    assert got.schema == TICK_SCHEMA
    assert got.to_pylist() == batch.sort_by([("symbol", "ascending")]).to_pylist()
    assert [str(p) for p in got.column("price").to_pylist()] == [str(Decimal(p).quantize(Decimal("0.0001"))) for p in prices]
    with store.connect() as conn:
        assert conn.execute(f"SELECT price FROM {store.schema}.ticks WHERE symbol = '005932'").fetchone()[0] == Decimal("99999999999999.9999")


def test_read_ticks_range_symbols_and_order(store):
    ticks = day_ticks(DAY, ["005930", "000660", "035420"], 200, seed=11) + day_ticks(DAY + timedelta(days=1), ["005930"], 50, seed=12)
    store.upsert(ticks_to_table(ticks))
    start, end = trading_day_bounds(DAY)
    got = store.read_ticks(start, end, symbols=["005930", "035420"])
    expected = sorted((t for t in ticks if t.symbol in ("005930", "035420") and start <= t.ts < end), key=lambda t: (t.symbol, t.cum_volume))
    assert got.to_pylist() == ticks_to_table(expected).to_pylist()
    assert store.read_ticks(start, end, symbols=[]).num_rows == 0
    assert store.read_ticks(start, start).num_rows == 0
    assert store.read_ticks(start, end + timedelta(days=1)).num_rows == 650
    assert store.count_ticks(DAY + timedelta(days=1)) == 50
    with pytest.raises(ValueError, match="timezone-aware"):
        store.read_ticks(datetime(2026, 11, 20), datetime(2026, 11, 21))


def test_bad_batch_is_refused_with_a_clear_error_and_stores_nothing(store):
    good = ticks_to_table(day_ticks(DAY, ["005930"], 5))
    bad = good.set_column(good.schema.get_field_index("symbol"), "symbol", pa.array([None, "005930", "005930", "005930", "005930"], pa.string()))
    with pytest.raises(ValueError, match="symbol"):
        store.upsert(bad)
    with pytest.raises(ValueError, match="lacks column"):
        store.upsert(good.drop_columns(["cum_volume"]))
    assert store.count_ticks(DAY) == 0


def test_two_installations_share_one_database(store, settings):
    other_settings = settings.model_copy(update={"pg_schema": settings.pg_schema + "_b"})
    other = HotStore(other_settings)
    try:
        other.init()
        store.upsert(ticks_to_table(day_ticks(DAY, ["005930"], 40)))
        assert other.count_ticks(DAY) == 0
        assert other.upsert(ticks_to_table(day_ticks(DAY, ["005930"], 40))) == 40
        assert store.count_ticks(DAY) == 40
    finally:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other_settings.pg_schema}" CASCADE')


def test_mode_detection_without_the_extension(settings):
    with psycopg.connect(settings.pg_dsn) as conn:
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if available:
        pytest.skip("this PostgreSQL has timescaledb available; test_timescale.py covers that case")
    auto = HotStore(settings.model_copy(update={"hot_mode": "auto"}))
    auto.init()
    assert auto.mode == "postgres" and auto.extension_version is None
    assert auto.status() == {"mode": "postgres", "extension_version": None, "schema": settings.pg_schema}
    forced = HotStore(settings.model_copy(update={"hot_mode": "timescaledb", "pg_schema": settings.pg_schema + "_x"}))
    with pytest.raises(HotStoreError, match="not available on this server"):
        forced.init()
    with psycopg.connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT to_regnamespace(%s)", (settings.pg_schema + "_x",)).fetchone()[0] is None


@pytest.fixture
def writer_url(settings, test_id):
    """A login role with row rights only (no CREATE), like the archivers' production role."""
    role = f"tvtest_{test_id}_hw"
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    yield settings.pg_dsn.replace("postgres@", f"{role}@", 1)
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_writer_role_without_ddl_rights_archives_into_the_owners_schema(settings, writer_url):
    writer_settings = settings.model_copy(update={"pg_url": writer_url})
    with pytest.raises(StoreNotInitialized, match="run `tickvault init` as the schema owner"):
        HotStore(writer_settings).init()
    HotStore(settings).init()  # the owner
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'GRANT USAGE ON SCHEMA "{settings.pg_schema}" TO "{writer_url.split("@")[0].split("//")[1]}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{settings.pg_schema}" TO "{writer_url.split("@")[0].split("//")[1]}"')
    writer_store = HotStore(writer_settings)
    writer_store.init()  # no DDL rights: uses the schema as init left it
    today = datetime.now(UTC).astimezone(KST).date()
    assert writer_store.write(ticks_to_table(day_ticks(today, ["005930"], 30)), StreamPosition(settings.stream, "hot", "1-0")) == 30  # partition made ahead
    # rights granted by hand, without `init --roles`: the partition function is not the writer's yet
    with pytest.raises(StoreError, match="run `tickvault init --roles` as the schema owner"):
        writer_store.write(ticks_to_table(day_ticks(date(2025, 1, 6), ["005930"], 5)), StreamPosition(settings.stream, "hot", "2-0"))
    writer_store.close()
    assert HotStore(settings).count_ticks(today) == 30
