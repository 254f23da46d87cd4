"""The lake (DuckLake on real DuckDB + Parquet files in a temp dir)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories import DAY, interleaved_ticks
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.errors import QueryError
from tickvault.core.wire import KST, TICK_SCHEMA, UTC, Tick, ticks_to_table
from tickvault.stores.contract import StreamPosition
from tickvault.stores.lake import Lake


def sort_key(table: pa.Table) -> pa.Table:
    return table.sort_by([("symbol", "ascending"), ("cum_volume", "ascending")])


@pytest.fixture
def lake(settings):
    store = Lake(settings)
    store.init()
    yield store
    store.close()


@pytest.fixture
def parquet_settings(settings):
    """Every commit a Parquet file (inlining off): for the tests of files themselves."""
    return settings.model_copy(update={"cold_inline_row_limit": 0})


def test_init_is_idempotent(settings):
    with Lake(settings) as first:
        first.init()
        snapshot = first.snapshot_id()
    with Lake(settings) as second:
        second.init()
        assert second.snapshot_id() == snapshot  # a second init changes nothing


def test_write_is_idempotent_and_checkpointed(lake):
    batch = interleaved_ticks(300)
    assert lake.write(batch, StreamPosition("s", "cold", "1-0")) == 300
    assert lake.write(batch, StreamPosition("s", "cold", "2-0")) == 0
    assert lake.write(batch.slice(100, 150), StreamPosition("s", "cold", "3-0")) == 0
    assert lake.count_ticks(DAY) == 300
    assert lake.checkpoint("s", "cold") == "3-0"
    assert lake.checkpoint("s", "hot") is None
    # overlapping batch: only the new part is added
    more = interleaved_ticks(400)
    assert lake.upsert(more) == 100
    assert lake.count_ticks(DAY) == 400
    assert lake.checkpoint("s", "cold") == "3-0"  # upsert never moves the checkpoint


def test_duplicates_inside_one_batch_are_stored_once(lake):
    batch = interleaved_ticks(50)
    doubled = pa.concat_tables([batch, batch.slice(10, 5)])
    assert lake.upsert(doubled) == 50
    assert lake.count_ticks(DAY) == 50


def test_exact_round_trip(lake):
    batch = interleaved_ticks(500)
    lake.upsert(batch)
    start, end = trading_day_bounds(DAY)
    back = lake.read_ticks(start, end)
    assert back.schema == TICK_SCHEMA
    assert back.equals(sort_key(batch))
    prices = back.column("price").to_pylist()
    assert Decimal("62700.2468") in prices  # scale 4 kept exactly
    only = lake.read_ticks(start, end, symbols=["000660"])
    assert set(only.column("symbol").to_pylist()) == {"000660"}
    assert only.num_rows == sum(1 for s in batch.column("symbol").to_pylist() if s == "000660")


def test_read_range_is_half_open(lake):
    lake.upsert(interleaved_ticks(20))
    first = datetime(2026, 11, 20, 9, 0, 0, tzinfo=KST)
    got = lake.read_ticks(first, first + timedelta(seconds=2))
    assert got.num_rows == 4  # seconds 0 and 1, two ticks each
    assert all(first <= ts < first + timedelta(seconds=2) for ts in got.column("ts").to_pylist())


def test_trade_date_is_the_kst_date(lake):
    # 23:30 UTC on the 19th is 08:30 KST on the 20th
    early = Tick("005930", datetime(2026, 11, 19, 23, 30, tzinfo=UTC), Decimal("100"), 1, 1, None, "sim")
    # midnight KST exactly, and the last microsecond before it
    midnight = Tick("005930", datetime(2026, 11, 20, 15, 0, tzinfo=UTC), Decimal("100"), 1, 2, None, "sim")
    before = Tick("005930", datetime(2026, 11, 20, 14, 59, 59, 999999, tzinfo=UTC), Decimal("100"), 1, 3, None, "sim")
    lake.upsert(ticks_to_table([early, midnight, before]))
    assert lake.count_ticks(DAY) == 2
    assert lake.count_ticks(date(2026, 11, 21)) == 1
    assert lake.count_ticks(date(2026, 11, 19)) == 0


def test_bad_batch_is_refused_with_a_reason(lake):
    batch = interleaved_ticks(5).drop_columns(["source"])
    with pytest.raises(ValueError, match="source"):
        lake.upsert(batch)
    assert lake.count_ticks(DAY) == 0


def test_files_are_sorted_zstd_and_partitioned_by_day(lake, settings):
    lake.upsert(interleaved_ticks(300))
    files = sorted((settings.lake_dir / "data").rglob("*.parquet"))
    assert len(files) == 1 and f"trade_date={DAY.isoformat()}" in str(files[0])
    meta = pq.read_metadata(files[0])
    assert meta.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(files[0])
    keys = list(zip(table.column("symbol").to_pylist(), table.column("cum_volume").to_pylist()))
    assert keys == sorted(keys)


def test_time_travel(lake):
    start, end = trading_day_bounds(DAY)
    lake.upsert(interleaved_ticks(100))
    first_snapshot = lake.snapshot_id()
    moment = datetime.now(UTC)
    lake.upsert(interleaved_ticks(250))
    assert lake.snapshot_id() > first_snapshot
    assert lake.read_ticks(start, end).num_rows == 250
    assert lake.read_ticks(start, end, as_of=first_snapshot).num_rows == 100
    assert lake.read_ticks(start, end, as_of=moment).num_rows == 100
    with pytest.raises(QueryError, match="snapshot id"):
        lake.read_ticks(start, end, as_of="yesterday")
    with pytest.raises(ValueError, match="no snapshot"):
        lake.read_ticks(start, end, as_of=lake.snapshot_id() + 100)
    with pytest.raises(ValueError, match="no snapshot"):
        lake.read_ticks(start, end, as_of=datetime(2020, 1, 1, tzinfo=UTC))


def test_compaction_keeps_rows_and_reduces_files(parquet_settings):
    settings = parquet_settings
    lake = Lake(settings)
    start, end = trading_day_bounds(DAY)
    other = date(2026, 11, 19)
    for i in range(8):  # interleave two days so the day's files are not adjacent commits
        lake.upsert(interleaved_ticks(60, start_cum=i * 1000))
        lake.upsert(interleaved_ticks(10, day=other, start_cum=i * 1000))
    before = lake.read_ticks(start, end)
    before_snapshot = lake.snapshot_id()
    assert lake.file_count(DAY) == 8
    result = lake.compact(DAY)
    assert result["files_before"] == 8 and result["files_after"] < 8
    assert lake.file_count(DAY) == result["files_after"]
    after = lake.read_ticks(start, end)
    assert after.equals(before)
    assert lake.count_ticks(other) == 80
    assert lake.read_ticks(start, end, as_of=before_snapshot).equals(before)
    for path in (settings.lake_dir / "data").rglob(f"trade_date={DAY.isoformat()}/*.parquet"):
        if pq.read_metadata(path).num_rows == after.num_rows:
            table = pq.read_table(path)
            keys = list(zip(table.column("symbol").to_pylist(), table.column("cum_volume").to_pylist()))
            assert keys == sorted(keys)
            break
    else:
        pytest.fail("no merged file holding the whole day")
    lake.close()


def test_init_interrupted_before_layout_is_completed(parquet_settings):
    settings = parquet_settings
    from tickvault.stores.lake import open_connection
    from tickvault.stores.sqlfiles import load

    con = open_connection(settings.lake_dir)  # a crash right after the tables were created
    con.execute("BEGIN")
    for statement in load("tickvault.stores.lake", "schema.sql")["create_tables"].split():
        con.execute(statement.duckdb())
    con.execute("COMMIT")
    con.close()
    with Lake(settings) as lake:
        lake.init()
        lake.upsert(interleaved_ticks(30))
    files = list((settings.lake_dir / "data").rglob("*.parquet"))
    assert len(files) == 1 and f"trade_date={DAY.isoformat()}" in str(files[0])
    assert pq.read_metadata(files[0]).row_group(0).column(0).compression == "ZSTD"


def test_connect_gives_a_queryable_lake(lake):
    from tickvault.stores.lake import retry_locked

    lake.upsert(interleaved_ticks(40))
    con = lake.connect(read_only=True)
    try:
        count = retry_locked("count", lambda: con.execute("SELECT count(*) FROM lake.ticks").fetchone()[0])
        assert count == 40
        with pytest.raises(Exception, match="read-only"):
            con.execute("DELETE FROM lake.ticks")
    finally:
        con.close()


def test_checkpoint_is_the_newest_and_survives_compaction(lake):
    for i in range(5):
        lake.write(interleaved_ticks(20, start_cum=i * 100), StreamPosition("s", "cold", f"{i + 1}-0"))
        lake.write(interleaved_ticks(20, start_cum=i * 100 + 50), StreamPosition("s", "other", f"{i + 1}-1"))
    assert lake.checkpoint("s", "cold") == "5-0"
    assert lake.checkpoint("s", "other") == "5-1"
    lake.compact(DAY)  # prunes the older checkpoint rows
    con = lake.connect(read_only=True)
    try:
        rows = con.execute("SELECT consumer_group, last_id FROM lake.ingest_checkpoint ORDER BY 1").fetchall()
    finally:
        con.close()
    assert rows == [("cold", "5-0"), ("other", "5-1")]
    assert lake.checkpoint("s", "cold") == "5-0"
    lake.write(interleaved_ticks(20, start_cum=900), StreamPosition("s", "cold", "6-0"))
    assert lake.checkpoint("s", "cold") == "6-0"


def test_read_symbols_filter(lake):
    lake.upsert(interleaved_ticks(90))
    start, end = trading_day_bounds(DAY)
    two = lake.read_ticks(start, end, symbols=["035420", "005930", "005930"])
    assert set(two.column("symbol").to_pylist()) == {"005930", "035420"} and two.num_rows == 60
    assert lake.read_ticks(start, end, symbols=["999999"]).num_rows == 0
    empty = lake.read_ticks(start, end, symbols=[])
    assert empty.num_rows == 0 and empty.schema == TICK_SCHEMA


def test_writer_lock_is_reentrant_and_excludes_other_threads(tmp_path):
    import threading

    from tickvault.stores.lake.writelock import writer_lock

    entered = threading.Event()

    def other() -> None:
        with writer_lock(tmp_path, timeout_s=30):
            entered.set()

    with writer_lock(tmp_path):
        with writer_lock(tmp_path, timeout_s=1):  # same thread: no self-deadlock
            pass
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.5), "another thread got the writer lock while it was held"
    assert entered.wait(10)
    thread.join()


def test_compaction_deletes_old_orphaned_files_only(parquet_settings):
    import os
    import shutil

    settings = parquet_settings
    lake = Lake(settings)
    lake.upsert(interleaved_ticks(30))
    stored = next((settings.lake_dir / "data").rglob("*.parquet"))
    old_orphan = stored.parent / "ducklake-killed-old.parquet"
    new_orphan = stored.parent / "ducklake-in-flight.parquet"
    shutil.copy(stored, old_orphan)
    shutil.copy(stored, new_orphan)
    two_hours_ago = datetime.now().timestamp() - 7200
    os.utime(old_orphan, (two_hours_ago, two_hours_ago))
    result = lake.compact(DAY)
    assert result["orphans_deleted"] == 1
    assert not old_orphan.exists() and new_orphan.exists() and stored.exists()
    assert lake.count_ticks(DAY) == 30
    lake.close()


def inlining(settings, flush_rows: int = 10**9, flush_s: float = 1e9):
    return settings.model_copy(update={"cold_inline_row_limit": 100, "cold_inline_flush_rows": flush_rows, "cold_inline_flush_s": flush_s})


def test_small_commits_are_inlined_and_the_anti_join_sees_them(settings):
    with Lake(inlining(settings)) as lake:
        batch = interleaved_ticks(90)
        assert lake.write(batch, StreamPosition("s", "cold", "1-0")) == 90
        assert lake.file_count() == 0 and lake.count_ticks(DAY) == 90  # in the catalog, not in a file
        assert lake.write(batch, StreamPosition("s", "cold", "2-0")) == 0  # redelivered: nothing twice
        assert lake.write(interleaved_ticks(120), StreamPosition("s", "cold", "3-0")) == 30
        assert lake.file_count() == 0
        assert lake.write(interleaved_ticks(100, start_cum=1000), StreamPosition("s", "cold", "4-0")) == 100  # the limit: inlined
        assert lake.file_count() == 0
        assert lake.write(interleaved_ticks(101, start_cum=5000), StreamPosition("s", "cold", "5-0")) == 101  # above: a file
        assert lake.file_count() == 1
        expected = pa.concat_tables([interleaved_ticks(120), interleaved_ticks(100, start_cum=1000), interleaved_ticks(101, start_cum=5000)])
        assert sort_key(lake.read_ticks(*trading_day_bounds(DAY))).equals(sort_key(expected))
        assert lake.checkpoint("s", "cold") == "5-0"


def test_inlined_ticks_are_flushed_by_size_with_time_travel_intact(settings):
    start, end = trading_day_bounds(DAY)
    with Lake(inlining(settings, flush_rows=150)) as lake:
        lake.write(interleaved_ticks(80), StreamPosition("s", "cold", "1-0"))
        inlined_snapshot = lake.snapshot_id()
        inlined = lake.read_ticks(start, end)
        assert lake.file_count() == 0
        lake.write(interleaved_ticks(160), StreamPosition("s", "cold", "2-0"))  # 80 more: 160 inlined >= 150
        assert lake.file_count() >= 1  # flushed to Parquet
        assert lake.count_ticks(DAY) == 160
        assert lake.read_ticks(start, end, as_of=inlined_snapshot).equals(inlined)
        assert lake.write(interleaved_ticks(160), StreamPosition("s", "cold", "3-0")) == 0  # the anti-join sees flushed rows
        assert sort_key(lake.read_ticks(start, end)).equals(sort_key(interleaved_ticks(160)))


def test_inlined_ticks_are_flushed_by_age(settings):
    with Lake(inlining(settings, flush_s=0.05)) as lake:
        lake.write(interleaved_ticks(10), StreamPosition("s", "cold", "1-0"))
        assert lake.file_count() == 0
        time.sleep(0.06)
        lake.write(interleaved_ticks(20), StreamPosition("s", "cold", "2-0"))
        assert lake.file_count() >= 1 and lake.count_ticks(DAY) == 20


def test_compaction_flushes_inlined_ticks(settings):
    with Lake(inlining(settings)) as lake:
        lake.write(interleaved_ticks(50), StreamPosition("s", "cold", "1-0"))
        lake.write(interleaved_ticks(90), StreamPosition("s", "cold", "2-0"))
        before = lake.read_ticks(*trading_day_bounds(DAY))
        assert lake.file_count() == 0
        result = lake.compact(DAY)
        assert result["files_after"] == 1 and result["rows"] == 90
        assert lake.read_ticks(*trading_day_bounds(DAY)).equals(before)


def test_the_inlining_limit_follows_the_setting(settings):
    with Lake(inlining(settings)) as lake:
        lake.write(interleaved_ticks(10), StreamPosition("s", "cold", "1-0"))
        assert lake.file_count() == 0
    with Lake(settings.model_copy(update={"cold_inline_row_limit": 0})) as lake:
        lake.write(interleaved_ticks(20), StreamPosition("s", "cold", "2-0"))
        assert lake.file_count() == 1 and lake.count_ticks(DAY) == 20


def test_a_reader_survives_a_flush_by_another_lake(settings):
    """A flush drops inlined-data tables another connection may have cached: reads and writes
    on that connection go on (regression: 'Failed to read inlined data ... does not exist')."""
    reader = Lake(inlining(settings))
    for i in range(3):
        reader.upsert(interleaved_ticks(50, start_cum=i * 100))
    assert reader.count_ticks(DAY) == 150
    with Lake(settings) as other:
        assert other.compact(DAY)["files_after"] == 1
    assert reader.count_ticks(DAY) == 150
    assert reader.write(interleaved_ticks(50, start_cum=900), StreamPosition("s", "cold", "1-0")) == 50
    assert reader.count_ticks(DAY) == 200
    reader.close()
