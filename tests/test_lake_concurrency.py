"""The lake with other processes: readers while a writer commits, competing writers,
failures in the middle of a commit. Real DuckDB, Parquet and SQLite catalog files."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from factories import DAY, interleaved_ticks
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.errors import LakeLocked, StoreError
from tickvault.core.stream import GroupConsumer, Publisher, connect_raw
from tickvault.core.wire import KST, Tick, decode_entries
from tickvault.services.archiver import Archiver, ArchiverOptions
from tickvault.stores.contract import StreamPosition
from tickvault.stores.lake import Lake
from tickvault.stores.lake.connection import catalog_path

READER = r"""
import json, sys, time
from datetime import date
from pathlib import Path
from tickvault.core.config import Settings
from tickvault.stores.lake import Lake

lake_dir, day, stop_file = sys.argv[1], date.fromisoformat(sys.argv[2]), Path(sys.argv[3])
lake = Lake(Settings(lake_dir=lake_dir))
while True:
    stopping = stop_file.exists()
    print(json.dumps({"t": time.time(), "count": lake.count_ticks(day)}), flush=True)
    if stopping:
        break
    time.sleep(0.005)
lake.close()
"""

UPSERTER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tickvault.core.config import Settings
from tickvault.stores.lake import Lake
from factories import interleaved_ticks

lake = Lake(Settings(lake_dir=sys.argv[1]))
lake.init()
batches = [interleaved_ticks(300, start_cum=i * 150) for i in range(10)]
while not Path(sys.argv[3]).exists():  # start together: the race is the point
    time.sleep(0.001)
print(sum(lake.upsert(batch) for batch in batches))
"""


def start_reader(settings, day, tmp_path):
    """A reader process, returned once it has counted at least once (the lake is attached)."""
    stop_file = tmp_path / "stop-reader"
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, str(settings.lake_dir), day.isoformat(), str(stop_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    first = proc.stdout.readline()
    assert first, f"reader died before its first count: {proc.stderr.read()}"
    proc.first_line = first
    return proc, stop_file


def finish_reader(proc, stop_file) -> list[dict]:
    stop_file.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in (proc.first_line + out).splitlines()]


def test_second_process_counts_today_while_writer_commits(settings, tmp_path):
    today = datetime.now(KST).date()
    batch_rows, batches = 1500, 25
    lake = Lake(settings)
    lake.init()
    proc, stop_file = start_reader(settings, today, tmp_path)
    started = time.time()
    for i in range(batches):
        batch = interleaved_ticks(batch_rows, day=today, start_cum=i * batch_rows)
        assert lake.write(batch, StreamPosition(settings.stream, "cold", f"{i + 1}-0")) == batch_rows
        time.sleep(0.02)
    finished = time.time()
    reads = finish_reader(proc, stop_file)
    lake.close()

    counts = [r["count"] for r in reads]
    during = [r["count"] for r in reads if started <= r["t"] <= finished]
    assert counts[-1] == batch_rows * batches
    assert counts == sorted(counts), "a reader saw the lake go backwards"
    assert all(c % batch_rows == 0 for c in counts), "a reader saw part of a batch"
    assert len(during) >= 5, f"reader only read {len(during)} times during the writes"
    assert len({c for c in during if 0 < c < batch_rows * batches}) >= 2, "no intermediate state was observed"


def test_cold_archiver_with_a_concurrent_reader(settings, rclient, tmp_path):
    today = datetime.now(KST).date()
    ticks = interleaved_ticks(6000, day=today)
    fields = [Tick(**row).to_fields() for row in ticks.to_pylist()]
    assert decode_entries([(f"{i + 1}-0", f) for i, f in enumerate(fields)]).dead == []
    ids = Publisher(rclient, settings.stream).publish_fields(fields[:3000])

    lake = Lake(settings)
    lake.init()  # readers never create a lake
    consumer = GroupConsumer(connect_raw(settings.redis_dsn), settings.stream, "cold", "cold-test")
    archiver = Archiver(consumer, lake, settings.dlq_stream, ArchiverOptions(batch_size=500, block_ms=50))
    proc, stop_file = start_reader(settings, today, tmp_path)
    worker = threading.Thread(target=archiver.run)
    worker.start()
    ids += Publisher(rclient, settings.stream).publish_fields(fields[3000:])
    deadline = time.monotonic() + 120
    while lake.checkpoint(settings.stream, "cold") != ids[-1] and time.monotonic() < deadline:
        time.sleep(0.1)
    archiver.stop()
    worker.join(60)
    reads = finish_reader(proc, stop_file)

    assert lake.count_ticks(today) == 6000
    assert lake.checkpoint(settings.stream, "cold") == ids[-1]
    counts = [r["count"] for r in reads]
    assert counts[-1] == 6000 and counts == sorted(counts)
    assert len({c for c in counts if 0 < c < 6000}) >= 2, "the reader never saw the archiver mid-way"
    assert rclient.xpending(settings.stream, "cold")["pending"] == 0
    lake.close()


def test_competing_writers_store_each_tick_once(settings, tmp_path):
    Lake(settings).init()
    tests_dir = str(Path(__file__).parent)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", UPSERTER, str(settings.lake_dir), tests_dir, str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    time.sleep(2.0)
    go.touch()
    added = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        added.append(int(out.strip()))
    with Lake(settings) as lake:
        assert lake.count_ticks(DAY) == sum(added)
        stored = lake.read_ticks(*trading_day_bounds(DAY))
    keys = set(zip(*(stored.column(c).to_pylist() for c in ("symbol", "ts", "cum_volume"))))
    assert len(keys) == stored.num_rows, "a tick was stored twice"
    assert sum(added) == stored.num_rows
    expected = set()
    for i in range(10):
        batch = interleaved_ticks(300, start_cum=i * 150)
        expected |= set(zip(*(batch.column(c).to_pylist() for c in ("symbol", "ts", "cum_volume"))))
    assert keys == expected


BLOCKER = r"""
import sqlite3, sys, time
from pathlib import Path
con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
con.rollback()
"""


def test_locked_catalog_raises_and_commits_nothing(settings, tmp_path):
    lake = Lake(settings, lock_budget_s=1.0)
    lake.init()
    lake.write(interleaved_ticks(100), StreamPosition(settings.stream, "cold", "1-0"))
    # another process holds the catalog's write lock (SQLite locks are per process, so
    # the blocker must live in a different one)
    release = tmp_path / "release"
    blocker = subprocess.Popen([sys.executable, "-c", BLOCKER, str(catalog_path(settings.lake_dir)), str(release)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert blocker.stdout.readline().strip() == "locked"
        with pytest.raises(LakeLocked, match="locked"):
            lake.write(interleaved_ticks(200), StreamPosition(settings.stream, "cold", "2-0"))
    finally:
        release.touch()
        blocker.wait(30)
    assert lake.count_ticks(DAY) == 100
    assert lake.checkpoint(settings.stream, "cold") == "1-0"
    assert lake.write(interleaved_ticks(200), StreamPosition(settings.stream, "cold", "2-0")) == 100  # the archiver's retry
    assert lake.checkpoint(settings.stream, "cold") == "2-0"
    lake.close()


def test_failed_data_write_leaves_nothing_visible(settings):
    lake = Lake(settings.model_copy(update={"cold_inline_row_limit": 0}))  # the Parquet write is what fails
    lake.init()
    lake.write(interleaved_ticks(100), StreamPosition(settings.stream, "cold", "1-0"))
    other_day = DAY.replace(day=21)
    # the partition directory of the new day cannot be created: the Parquet write fails
    # the way a full disk does, in the middle of the transaction
    blocked = settings.lake_dir / "data" / "main" / "ticks" / f"trade_date={other_day.isoformat()}"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a directory")
    batch = pa.concat_tables([interleaved_ticks(100, start_cum=0), interleaved_ticks(50, day=other_day)])
    with pytest.raises(StoreError):
        lake.write(batch, StreamPosition(settings.stream, "cold", "2-0"))
    assert lake.count_ticks(DAY) == 100
    assert lake.count_ticks(other_day) == 0
    assert lake.checkpoint(settings.stream, "cold") == "1-0"
    blocked.unlink()
    assert lake.write(batch, StreamPosition(settings.stream, "cold", "2-0")) == 50
    assert lake.count_ticks(other_day) == 50
    assert lake.checkpoint(settings.stream, "cold") == "2-0"
    lake.close()


INITIALISER = r"""
import sys, time
from pathlib import Path
from tickvault.core.config import Settings
from tickvault.stores.lake import Lake
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
lake = Lake(Settings(lake_dir=sys.argv[1]))
lake.init()
print(lake.count_ticks(__import__("datetime").date(2026, 11, 20)))
"""


def test_processes_creating_the_same_lake_at_once(settings, tmp_path):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", INITIALISER, str(settings.lake_dir), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    time.sleep(1.5)
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "0"
    with Lake(settings) as lake:
        assert lake.upsert(interleaved_ticks(10)) == 10
        assert lake.count_ticks(DAY) == 10
