"""Raw lake write speed: `python -m tickvault.lake.bench` (numbers in docs/lake.md).

Commits synthetic batches through ``Lake.write`` (dedup anti-join + checkpoint, the
archiver's path) into a fresh lake in a temp dir, optionally while another process
counts the day's ticks in a tight loop (a notebook / `tickvault status` reading while
the archiver writes). The end-to-end benchmark reuses ``measure_write`` as its raw lake
limit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from ...core.config import Settings
from ...core.wire import KST, PRICE_TYPE, TICK_SCHEMA, TS_TYPE
from .store import Lake

READER = r"""
import json, sys, time
from datetime import date
from pathlib import Path
from tickvault.core.config import Settings
from tickvault.stores.lake import Lake
lake = Lake(Settings(lake_dir=sys.argv[1]))
day, stop = date.fromisoformat(sys.argv[2]), Path(sys.argv[3])
latencies = []
while not stop.exists():
    t = time.perf_counter()
    lake.count_ticks(day)
    latencies.append(time.perf_counter() - t)
latencies.sort()
print(json.dumps({"reads": len(latencies), "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
                  "max_ms": 1000 * latencies[-1] if latencies else None}))
"""


@dataclass
class WriteResult:
    batch_rows: int
    batches: int
    reader: bool
    mode: str  # "archiver": dedup anti-join + checkpoint; "raw": plain INSERT; "parquet": file per batch
    rows_per_s: float
    commit_p50_ms: float
    commit_max_ms: float
    reader_reads: int | None = None
    reader_p50_ms: float | None = None


def synthetic_batches(day: date, batch_rows: int, batches: int, symbols: int = 20, seed: int = 7) -> list[pa.Table]:
    """Time-ordered batches like the archiver's: every symbol trades in every batch."""
    rng = np.random.default_rng(seed)
    names = np.array([f"{100000 + 15 * i:06d}" for i in range(symbols)])
    open_us = int(datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST).timestamp() * 1_000_000)
    total = batch_rows * batches
    sym = rng.integers(0, symbols, total)
    ts = open_us + np.sort(rng.integers(0, 6 * 3600 * 1_000_000, total)) // 1_000_000 * 1_000_000
    volume = rng.integers(1, 500, total)
    cum = np.zeros(total, dtype=np.int64)
    for s in range(symbols):
        mask = sym == s
        cum[mask] = np.cumsum(volume[mask])
    price = rng.integers(5_000, 200_000, total) * 10_000  # KRW scaled by 10^4
    out = []
    for b in range(batches):
        sl = slice(b * batch_rows, (b + 1) * batch_rows)
        out.append(pa.Table.from_arrays([
            pa.array(["KRX"] * batch_rows),
            pa.array(names[sym[sl]]),
            pa.array(ts[sl], pa.int64()).cast(TS_TYPE),
            pa.array(price[sl] // 10_000, pa.int64()).cast(pa.decimal128(38, 4)).cast(PRICE_TYPE),
            pa.array(volume[sl], pa.int64()),
            pa.array(cum[sl], pa.int64()),
            pa.array(np.where(volume[sl] % 2 == 0, "B", "S")),
            pa.array(["sim"] * batch_rows),
            pa.array(ts[sl], pa.int64()).cast(TS_TYPE),
        ], schema=TICK_SCHEMA))
    return out


RAW_INSERT = (
    "INSERT INTO lake.ticks SELECT *, DATE '1970-01-01' + CAST((epoch_us(ts) + 32400000000) // 86400000000 AS INTEGER) "
    "FROM tv_batch ORDER BY symbol, cum_volume"
)


def _raw_write(lake: Lake, batch: pa.Table) -> None:
    def transaction(con) -> None:
        con.register("tv_batch", batch)
        try:
            con.execute(RAW_INSERT)
        finally:
            con.unregister("tv_batch")

    lake._run("raw insert", transaction, write=True)


def _parquet_write(lake_dir: Path, batch: pa.Table, seq: int) -> None:
    """The fallback design's write: one sorted zstd file per batch, atomically renamed in."""
    import os

    import pyarrow.parquet as pq

    day = batch.column("ts")[0].as_py().astimezone(KST).date()
    folder = Path(lake_dir) / "hive" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".part-{seq:06d}.parquet.tmp"
    pq.write_table(batch.sort_by([("symbol", "ascending"), ("cum_volume", "ascending")]), tmp, compression="zstd")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, folder / f"part-{seq:06d}.parquet")


def measure_write(lake_dir: Path, batch_rows: int, batches: int, reader: bool = False, mode: str = "archiver") -> WriteResult:
    """Commit ``batches`` batches of ``batch_rows`` ticks; rows/s over the whole run.

    mode "archiver" is ``Lake.write`` with a checkpoint (what the cold archiver does);
    "raw" is a plain INSERT per batch, the floor the dedup is measured against;
    "parquet" is the hive-Parquet fallback's write (no dedup, no catalog), for comparison.
    """
    day = date(2026, 11, 20)
    data = synthetic_batches(day, batch_rows, batches)
    lake = Lake(Settings(lake_dir=lake_dir))
    lake.init()
    proc = stop = None
    if reader:
        stop = Path(lake_dir) / "stop-reader"
        proc = subprocess.Popen([sys.executable, "-c", READER, str(lake_dir), day.isoformat(), str(stop)],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
    commits = []
    started = time.perf_counter()
    for i, batch in enumerate(data):
        t = time.perf_counter()
        if mode == "raw":
            _raw_write(lake, batch)
        elif mode == "parquet":
            _parquet_write(lake_dir, batch, i)
        else:
            lake.write(batch, checkpoint=("bench", "cold", f"{i + 1}-0"))
        commits.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    if mode != "parquet":
        assert lake.count_ticks(day) == batch_rows * batches
    lake.close()
    commits.sort()
    result = WriteResult(batch_rows, batches, reader, mode, round(batch_rows * batches / elapsed),
                         round(1000 * commits[len(commits) // 2], 1), round(1000 * commits[-1], 1))
    if proc is not None:
        stop.touch()
        out, _ = proc.communicate(timeout=120)
        stats = json.loads(out)
        result.reader_reads = stats["reads"]
        result.reader_p50_ms = round(stats["p50_ms"], 1) if stats["p50_ms"] is not None else None
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows per run")
    parser.add_argument("--batch", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--mode", nargs="+", default=["parquet", "raw", "archiver"], choices=["parquet", "raw", "archiver"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration; the median run is printed")
    args = parser.parse_args(argv)
    configs = [
        (batch_rows, mode, reader)
        for batch_rows in args.batch
        for mode in args.mode
        # the fallback has no catalog to read, so its "reader" would only measure CPU contention
        for reader in ((False,) if mode == "parquet" else (False, True))
    ]
    runs: dict[tuple, list[WriteResult]] = {config: [] for config in configs}
    for _ in range(args.repeat):  # rounds over all configurations: load drifts hit each alike
        for batch_rows, mode, reader in configs:
            with tempfile.TemporaryDirectory() as tmp:
                result = measure_write(Path(tmp) / "lake", batch_rows, max(1, args.rows // batch_rows), reader, mode)
            runs[(batch_rows, mode, reader)].append(result)
    for config in configs:
        results = sorted(runs[config], key=lambda r: r.rows_per_s)
        median = results[len(results) // 2]
        print(json.dumps(asdict(median) | {"runs_rows_per_s": [r.rows_per_s for r in results]}), flush=True)

if __name__ == "__main__":
    main()
