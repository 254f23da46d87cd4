"""Hot-store write path: ticks/s of HotSink.write (staged binary COPY + INSERT ... ON CONFLICT
+ checkpoint, PostgreSQL mode also folding candles) next to the raw limits measured in the
same run: the numpy COPY encoder alone and a binary COPY into an unindexed table.

    python bench/bench_hot.py [--pg URL] [--tsdb URL] [--ticks 200000] [--batch 5000]

Uses its own schemas (bench_hot_*) and drops them afterwards.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import psycopg

from tickvault.core.config import Settings
from tickvault.dev.simulate import generate_day
from tickvault.stores.contract import StreamPosition
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.copy import encode_binary_copy


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>10,.0f} ticks/s"


def bench_mode(url: str, mode: str, table, batch: int) -> None:
    schema = f"bench_hot_{mode}"
    settings = Settings(pg_url=url, pg_schema=schema, hot_mode=mode)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    store = HotStore(settings)
    store.init()
    try:
        for label in ("new", "replay (all duplicates)"):
            started = time.perf_counter()
            for n, offset in enumerate(range(0, table.num_rows, batch)):
                store.write(table.slice(offset, batch), StreamPosition("bench", "hot", f"{n + 1}-0"))
            print(f"  {mode:<12} HotStore.write {label:<23} {rate(table.num_rows, time.perf_counter() - started)}")
        with store.connect(autocommit=True) as conn:
            conn.execute(store.sql("write", "create_stage").as_string(conn).replace("tv_stage", "raw_copy").replace("ON COMMIT DELETE ROWS", ""))
            payload = encode_binary_copy(table)
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(store.sql("write", "copy_stage").as_string(conn).replace("tv_stage", "raw_copy")) as copy:
                copy.write(payload)
            print(f"  {mode:<12} raw binary COPY, no index          {rate(table.num_rows, time.perf_counter() - started)}")
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--tsdb", help="URL of a PostgreSQL with TimescaleDB (optional)")
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    table = generate_day(date(2026, 11, 20), symbols=20, ticks=args.ticks, seed=1)
    started = time.perf_counter()
    encode_binary_copy(table)
    print(f"  numpy binary COPY encoder                      {rate(table.num_rows, time.perf_counter() - started)}")
    bench_mode(args.pg, "postgres", table, args.batch)
    if args.tsdb:
        bench_mode(args.tsdb, "timescaledb", table, args.batch)


if __name__ == "__main__":
    main()
