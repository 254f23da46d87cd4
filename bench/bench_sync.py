"""Sync costs on one simulated day: reconcile of a clean day (the common case, one aggregate
query per store), verify, and a repair of a few planted differences.

    python bench/bench_sync.py [--pg URL] [--ticks 1000000] [--symbols 200] [--lake-dir DIR]

Uses its own schema (bench_sync) and a temporary lake, and removes both afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg

from tickvault.core.config import Settings
from tickvault.dev.simulate import generate_day
from tickvault.services.sync import verify
from tickvault.services.sync.reconcile import reconcile
from tickvault.services.sync.verify import day_range, scan
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 20)


def timed(fn, runs: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--lake-dir", help="Directory for the temporary lake (default: a new temp dir)")
    args = parser.parse_args()

    lake_dir = Path(args.lake_dir or tempfile.mkdtemp(prefix="bench_sync_"))
    settings = Settings(pg_url=args.pg, pg_schema="bench_sync", hot_mode="postgres", lake_dir=lake_dir / "lake")
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_sync CASCADE")
    try:
        ticks = generate_day(DAY, symbols=args.symbols, ticks=args.ticks, seed=1)
        hot, lake = HotStore(settings), Lake(settings)
        hot.init()
        lake.init()
        started = time.perf_counter()
        for offset in range(0, ticks.num_rows, 100_000):
            hot.upsert(ticks.slice(offset, 100_000))
        print(f"load hot   {ticks.num_rows:,} ticks in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        lake.upsert(ticks)
        print(f"load lake  {ticks.num_rows:,} ticks in {time.perf_counter() - started:.1f}s")
        with hot.connect(autocommit=True) as conn:
            conn.execute("ANALYZE bench_sync.ticks")

        start, end = day_range(DAY)
        t_hot, _ = timed(lambda: scan(hot, start, end, None))
        t_lake, _ = timed(lambda: scan(lake, start, end, None))
        print(f"per-minute fingerprint query: hot {t_hot:.2f}s, lake {t_lake:.2f}s (median of 3)")
        t, report = timed(lambda: reconcile(settings, DAY, repair=True, stores=(hot, lake)))
        assert report.consistent and not report.differences, report.after.reasons()
        print(f"reconcile, clean {ticks.num_rows:,}-tick day (incl. integrity report): {t:.2f}s (median of 3)")
        env = dict(os.environ, TICKVAULT_PG_URL=args.pg, TICKVAULT_PG_SCHEMA="bench_sync", TICKVAULT_HOT_MODE="postgres",
                   TICKVAULT_LAKE_DIR=str(settings.lake_dir))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tickvault.cli", "reconcile", "--date", DAY.isoformat()], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"`tickvault reconcile` as a command (process start, lake attach included): {time.perf_counter() - started:.2f}s")
        t, vr = timed(lambda: verify(settings, DAY, stores=[hot, lake]))
        assert vr.consistent
        print(f"verify, both stores: {t:.2f}s (median of 3)")

        # plant differences: 100 ticks missing from the lake, 100 from hot, in different minutes
        step = ticks.num_rows // 100
        lost_cold = list(range(0, ticks.num_rows, step))[:100]
        lost_hot = list(range(step // 2, ticks.num_rows, step))[:100]
        with hot.connect(autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany(
                "DELETE FROM bench_sync.ticks WHERE symbol = %(symbol)s AND ts = %(ts)s AND cum_volume = %(cum_volume)s",
                ticks.take(lost_hot).select(["symbol", "ts", "cum_volume"]).to_pylist(),
            )
        con = lake.connect()
        con.register("lost", ticks.take(lost_cold).select(["symbol", "ts", "cum_volume"]))
        con.execute(
            "DELETE FROM lake.ticks WHERE EXISTS (SELECT 1 FROM lost l WHERE l.symbol = ticks.symbol "
            "AND l.ts = ticks.ts AND l.cum_volume = ticks.cum_volume)"
        )
        con.close()
        started = time.perf_counter()
        report = reconcile(settings, DAY, repair=True, stores=(hot, lake))
        print(
            f"reconcile --repair with {len(report.differences)} differing minutes: {time.perf_counter() - started:.2f}s, "
            f"added {report.added_to_hot} to hot, {report.added_to_cold} to cold, consistent={report.consistent}"
        )
        lake.close()
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS bench_sync CASCADE")
        if not args.lake_dir:
            shutil.rmtree(lake_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
