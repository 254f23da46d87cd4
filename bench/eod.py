"""End of day on a big day: compaction of the lake's small files, reconcile of a clean day.

The day (default 10M ticks; --quick 1M) is generated in pieces of 1M ticks with distinct
symbols, written to the lake through the cold sink in the archiver's batch size (so it
leaves one Parquet file per commit, as a live day does) and to the hot store through the
hot store's upsert. Then, timed:

- ``tickvault compact`` for the day (Lake.compact: merge the day's small files);
- ``tickvault.services.sync.reconcile`` of the clean day (hot vs cold per symbol and minute,
  repair on, nothing to repair), which must come out consistent.

The load phases are timed too, for orientation only (bench/ingest.py measures ingest).

    python bench/eod.py [--ticks 10000000] [--quick]      (last line: JSON of all figures)
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DAY, Timer, emit, isolated_settings, say

from tickvault.dev.simulate import generate_day
from tickvault.stores.contract import StreamPosition
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

PIECE = 1_000_000


def pieces(ticks: int, symbols_per_piece: int = 20):
    """The day as 1M-tick tables with symbols no other piece uses (one piece in memory at a time)."""
    seen: set[str] = set()
    seed = 100
    left = ticks
    while left > 0:
        n = min(PIECE, left)
        table = generate_day(DAY, symbols=symbols_per_piece, ticks=n, seed=seed)
        seed += 1
        symbols = set(table.column("symbol").unique().to_pylist())
        if symbols & seen:
            continue  # a code drawn twice: another seed, so every symbol's day stays continuous
        seen |= symbols
        left -= n
        yield table


def run(ticks: int, cold_batch: int) -> dict[str, float]:
    print(f"eod: a {ticks:,}-tick day, lake commits of {cold_batch:,} rows, {os.cpu_count()} cores", flush=True)
    results: dict[str, float] = {"eod_ticks": ticks}
    with isolated_settings("eod") as s:
        store, lake = HotStore(s), Lake(s)
        store.init()
        lake.init()
        load_cold = load_hot = 0.0
        commits = 0
        for table in pieces(ticks):
            with Timer() as t:
                for start in range(0, table.num_rows, cold_batch):
                    commits += 1
                    lake.write(table.slice(start, cold_batch), StreamPosition(s.stream, "cold", f"{commits}-0"))
            load_cold += t.seconds
            with Timer() as t:
                for start in range(0, table.num_rows, 200_000):
                    store.upsert(table.slice(start, 200_000))
            load_hot += t.seconds
            del table
            gc.collect()
        say("eod load: lake (cold lake, archiver-sized commits)", ticks / load_cold)
        say("eod load: hot store upsert", ticks / load_hot)
        files_before = lake.file_count(DAY)
        with Timer() as t:
            lake.compact(DAY)
        files_after = lake.file_count(DAY)
        results.update(
            eod_compact_seconds=round(t.seconds, 2),
            eod_compact_ticks_per_s=round(ticks / t.seconds),
            eod_compact_files_before=files_before,
            eod_compact_files_after=files_after,
            eod_load_cold_ticks_per_s=round(ticks / load_cold),
            eod_load_hot_ticks_per_s=round(ticks / load_hot),
        )
        print(f"  compaction: {files_before} files -> {files_after} in {t.seconds:.1f} s", flush=True)
        assert lake.count_ticks(DAY) == ticks, "compaction changed the day's tick count"
        lake.close()
        store.close()

        from tickvault.services.sync.reconcile import reconcile

        with Timer() as t:
            report = reconcile(s, DAY, repair=True)
        results.update(
            eod_reconcile_seconds=round(t.seconds, 2),
            eod_reconcile_ticks_per_s=round(ticks / t.seconds),
            eod_reconcile_consistent=report.consistent,
            eod_reconcile_differences=len(report.differences),
        )
        print(f"  reconcile of the clean day: {t.seconds:.1f} s, consistent={report.consistent}, "
              f"{len(report.differences)} differing minutes", flush=True)
        if not report.consistent or report.differences:
            raise SystemExit("reconcile of a clean day found differences: a bug, not a benchmark result")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="a 1M-tick day")
    parser.add_argument("--cold-batch", type=int, default=50_000, help="rows per lake commit (the cold archiver's batch size)")
    args = parser.parse_args()
    emit(run(1_000_000 if args.quick else args.ticks, args.cold_batch))


if __name__ == "__main__":
    main()
