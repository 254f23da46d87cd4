"""The lake scaled out: DuckLake's catalog on PostgreSQL, its Parquet files on S3 (SeaweedFS),
writers in several processes. Real servers only; the S3 server skips the module's S3 tests with
the reason when it cannot start."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from factories import DAY, interleaved_ticks
from helpers import sort_key, subprocess_env
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.errors import LakeLocked, TickvaultError
from tickvault.core.wire import TICK_SCHEMA
from tickvault.stores.contract import StreamPosition
from tickvault.stores.lake import Lake
from tickvault.stores.lake.connection import is_lock_error
from tickvault.stores.lake.location import LakeLocation
from tickvault.stores.lake.store import as_tick_schema
from tickvault.stores.lake.writelock import writer_lock

OTHER_DAY = date(2026, 11, 19)

UPSERTER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tickvault.cli import cli
from tickvault.core.config import Settings
from factories import interleaved_ticks
from tickvault.stores.lake import Lake

lake = Lake(Settings())
lake.init()
batches = [interleaved_ticks(300, start_cum=i * 150) for i in range(5)]
while not Path(sys.argv[2]).exists():  # start together: the race is the point
    time.sleep(0.001)
print(sum(lake.upsert(batch) for batch in batches))
"""


def day_ticks(lake: Lake, as_of: int | None = None):
    start, end = trading_day_bounds(DAY)
    return sort_key(lake.read_ticks(start, end, as_of=as_of))


def test_postgres_catalog_holds_the_lake_in_its_own_schema(catalog_settings: Settings) -> None:
    batch = interleaved_ticks(400)
    with Lake(catalog_settings) as lake:
        assert not lake.exists()
        lake.init()
        assert lake.exists()
        assert lake.write(batch, StreamPosition(catalog_settings.stream, "cold", "5-0")) == batch.num_rows
        assert lake.write(batch) == 0  # the anti-join sees the stored keys
        assert day_ticks(lake).num_rows == batch.num_rows
        assert lake.checkpoint(catalog_settings.stream, "cold") == "5-0"
    assert not (catalog_settings.lake_dir / "catalog.sqlite").exists()
    with psycopg.connect(catalog_settings.pg_dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                             (catalog_settings.lake_catalog_schema,))}
    assert {"ducklake_metadata", "ducklake_snapshot", "ducklake_data_file"} <= tables


def test_writer_lock_on_postgres_excludes_another_session(catalog_settings: Settings) -> None:
    location = LakeLocation.of(catalog_settings)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom tickvault.core.config import Settings\nfrom tickvault.stores.lake.location import LakeLocation\n"
         "from tickvault.stores.lake.writelock import writer_lock\n"
         "with writer_lock(LakeLocation.of(Settings())):\n    print('held', flush=True)\n    sys.stdin.readline()\n"],
        env=subprocess_env(catalog_settings), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LakeLocked, match="held by another writer"), writer_lock(location, timeout_s=0.5):
            pass
    finally:
        holder.kill()  # SIGKILL: its session ends, and the lock with it
        holder.wait()
    with writer_lock(location, timeout_s=10), writer_lock(location, timeout_s=0.1):  # re-entrant in one thread
        pass


def test_commit_conflicts_of_a_postgres_catalog_are_retryable() -> None:
    for message in ("TransactionContext Error: Failed to commit DuckLake transaction: snapshot id already exists",
                    "Transaction conflict - attempting to delete inlined data that was deleted by another transaction"):
        assert is_lock_error(RuntimeError(message))
    assert not is_lock_error(RuntimeError("Binder Error: column x not found"))


def test_overlapping_writers_in_processes_store_each_tick_once(catalog_settings: Settings, tmp_path: Path) -> None:
    """DuckLake's own commit retry re-applies an append without its anti-join: only the advisory
    lock keeps two writers of the same keys from storing duplicates."""
    Lake(catalog_settings).init()
    go = tmp_path / "go"
    tests_dir = str(Path(__file__).parent)
    procs = [subprocess.Popen([sys.executable, "-c", UPSERTER, tests_dir, str(go)], env=subprocess_env(catalog_settings),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    go.touch()
    added = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        added.append(int(out.strip().splitlines()[-1]))
    sent = [interleaved_ticks(300, start_cum=i * 150) for i in range(5)]
    distinct = {(v, s, t, c) for b in sent for v, s, t, c in zip(*(b.column(n).to_pylist() for n in ("venue", "symbol", "ts", "cum_volume")))}
    with Lake(catalog_settings) as lake:
        stored = day_ticks(lake)
        keys = {(v, s, t, c) for v, s, t, c in zip(*(stored.column(n).to_pylist() for n in ("venue", "symbol", "ts", "cum_volume")))}
        assert len(keys) == stored.num_rows  # no duplicates
        assert keys == distinct
        assert sum(added) == stored.num_rows  # every tick counted once, by the writer that stored it
        assert lake.duplicate_keys(*trading_day_bounds(DAY)) == []


def test_s3_lake_round_trip_compaction_time_travel_expiry_and_cleanup(scale_settings: Settings) -> None:
    batches = [interleaved_ticks(200, start_cum=i * 100) for i in range(4)]
    with Lake(scale_settings) as lake:
        lake.init()
        for batch in batches:
            lake.write(batch)
        before = day_ticks(lake)
        snapshot = lake.snapshot_id()
        files = lake.live_files(DAY)
        assert files and all(f.startswith(f"{scale_settings.lake_data}/") for f in files)
        assert lake.file_count(DAY) == len(files) > 1
        result = lake.compact(DAY)
        assert result["files_after"] < result["files_before"] and result["rows"] == before.num_rows
        assert day_ticks(lake).equals(before)
        assert day_ticks(lake, as_of=snapshot).equals(before)  # time travel across the merge
        expired = lake.expire_snapshots(older_than=timedelta(0))
        assert expired["snapshots"] > 0
        assert expired["files_deleted"] >= len(files)  # the merged-away files are gone from the bucket
        assert day_ticks(lake).equals(before)
        con = lake.connect()
        try:
            listed = {r[0] for r in con.execute(f"SELECT file FROM glob('{scale_settings.lake_data}/**/*.parquet')").fetchall()}
        finally:
            con.close()
        assert listed == set(lake.live_files(DAY))


def test_wrong_s3_secret_is_refused_and_never_printed(scale_settings: Settings) -> None:
    with Lake(scale_settings) as lake:
        lake.init()
    wrong = scale_settings.model_copy(update={"s3_secret": SecretStr("not-the-secret-123")})
    with Lake(wrong) as lake:
        with pytest.raises(TickvaultError) as caught:
            lake.write(interleaved_ticks(500))  # more than cold_inline_row_limit: a Parquet file on S3
    assert "not-the-secret-123" not in str(caught.value)
    assert "not-the-secret-123" not in LakeLocation.of(wrong).describe()


def lake_cli(s: Settings, *args: str) -> str:
    result = CliRunner().invoke(cli, ["lake", *args], env=subprocess_env(s), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fill_and_compact(lake: Lake) -> pa.Table:
    """A day in several files, compacted: the replaced files stay in storage until cleanup."""
    lake.init()
    for i in range(4):
        lake.write(interleaved_ticks(150, start_cum=i * 1000))
    lake.write(interleaved_ticks(20, day=OTHER_DAY))
    lake.compact(DAY)
    return day_ticks(lake)


def test_pyarrow_reads_the_live_files_of_a_local_lake(settings: Settings) -> None:
    with Lake(settings) as lake:
        expected = fill_and_compact(lake)
    listed = lake_cli(settings, "files", "--date", DAY.isoformat()).split()
    on_disk = list((settings.lake_dir / "data").rglob(f"trade_date={DAY.isoformat()}/*.parquet"))
    assert len(on_disk) > len(listed) >= 1  # the directory still holds the merged-away files
    got = pq.read_table(listed, partitioning=None).select(list(TICK_SCHEMA.names))
    assert sort_key(as_tick_schema(got)).equals(expected)
    everything = lake_cli(settings, "files").split()
    assert set(listed) < set(everything) and any(f"trade_date={OTHER_DAY.isoformat()}/" in f for f in everything)


def test_pyarrow_reads_the_live_files_of_a_lake_on_s3(scale_settings: Settings) -> None:
    with Lake(scale_settings) as lake:
        expected = fill_and_compact(lake)
    listed = lake_cli(scale_settings, "files", "--date", DAY.isoformat()).split()
    assert listed and all(path.startswith("s3://") for path in listed)
    s3 = LakeLocation.of(scale_settings).s3_filesystem()
    got = pq.read_table([path.removeprefix("s3://") for path in listed], filesystem=s3, partitioning=None).select(list(TICK_SCHEMA.names))
    assert sort_key(as_tick_schema(got)).equals(expected)


def test_migrate_moves_a_local_lake_to_s3_with_its_history(settings: Settings, s3_server: object, test_id: str) -> None:
    from scaleout import S3_BUCKET, S3_KEY_ID, S3_SECRET

    with Lake(settings) as lake:
        expected = fill_and_compact(lake)
        lake.write(interleaved_ticks(10, start_cum=9000), StreamPosition(settings.stream, "cold", "9-0"))
        expected = day_ticks(lake)
        old_snapshot = lake.snapshot_id() - 1
        as_of_before = day_ticks(lake, as_of=old_snapshot)
    target = f"s3://{S3_BUCKET}/{test_id}-moved"
    access = {"TICKVAULT_S3_ENDPOINT": s3_server.endpoint, "TICKVAULT_S3_KEY_ID": S3_KEY_ID,  # type: ignore[attr-defined]
              "TICKVAULT_S3_SECRET": S3_SECRET, "TICKVAULT_S3_URL_STYLE": "path", "TICKVAULT_S3_USE_SSL": "false"}
    result = CliRunner().invoke(cli, ["lake", "migrate", "--to", target], env=subprocess_env(settings, **access), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "equal rows" in result.output and f"TICKVAULT_LAKE_DATA={target}" in result.output
    moved = settings.model_copy(update={"lake_data": target, "s3_endpoint": s3_server.endpoint, "s3_key_id": S3_KEY_ID,  # type: ignore[attr-defined]
                                        "s3_secret": SecretStr(S3_SECRET), "s3_url_style": "path", "s3_use_ssl": False})
    shutil.rmtree(settings.lake_dir / "data")  # nothing may still be read from the local disk
    with Lake(moved) as lake:
        assert day_ticks(lake).equals(expected)
        assert day_ticks(lake, as_of=old_snapshot).equals(as_of_before)  # time travel survived the move
        assert lake.checkpoint(settings.stream, "cold") == "9-0"
        assert lake.write(interleaved_ticks(5, start_cum=20000)) == 5  # and it takes new commits there
        assert all(path.startswith(f"{target}/") for path in lake.live_files(DAY))
    with Lake(settings) as stale, pytest.raises(TickvaultError, match="does not match"):
        stale.count_ticks(DAY)  # a host still configured for the local files is refused, not misled


def test_lake_sql_script_of_a_scaled_lake_holds_no_secret(scale_settings: Settings) -> None:
    from tickvault.stores.lake.views import lake_script

    location = LakeLocation.of(scale_settings.model_copy(update={"lake_catalog": "postgresql://tv:hunter2@db.example:5432/lake"}))
    script = lake_script(location, 2026, 2026)
    assert "hunter2" not in script and str(scale_settings.s3_secret.get_secret_value()) not in script  # type: ignore[union-attr]
    assert "LOAD postgres_scanner;" in script and "LOAD httpfs;" in script
    assert "ducklake:postgres:postgresql://tv:<your catalog password>@db.example:5432/lake" in script
    assert "METADATA_SCHEMA" in script and "CREATE OR REPLACE SECRET" in script
