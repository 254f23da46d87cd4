"""Query benchmark: 15m bars from the lake through tickvault.Vault vs the same question written
by hand in DuckDB SQL over the same Parquet files, in the same run.

  A. one symbol over one simulated year of trading dates
  B. all symbols over one trading date

Both answers are checked to agree (bars, total volume) before timing. Prints one line per case
and, last, a JSON object with the medians and ratios (tickvault / hand-written).

  .venv/bin/python bench/bench_query.py [--year 2025] [--ticks-per-day 20000] [--symbols 200]
      [--ticks-per-symbol 5000] [--repeat 5] [--lake DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from tickvault.core import calendar as krx
from tickvault.core.config import Settings
from tickvault.core.wire import KST, PRICE_TYPE, TICK_SCHEMA, TS_TYPE
from tickvault.services.api import Vault
from tickvault.stores.lake import Lake


def day_ticks(rng: np.random.Generator, day: date, symbols: list[str], per_symbol: int) -> pa.Table:
    """Continuous-session trades, several per second, open auction at the open, close at 15:30."""
    sess = krx.session(day)
    open_us = int(sess.open.timestamp()) * 1_000_000
    close_us = int(sess.close.timestamp()) * 1_000_000
    span = int((sess.close - sess.open).total_seconds()) - 600
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("symbol", "ts", "price", "volume", "cum")}
    for symbol in symbols:
        seconds = np.sort(rng.integers(0, span, per_symbol))
        seconds[0] = 0
        ts = open_us + seconds.astype(np.int64) * 1_000_000
        ts[-1] = close_us
        steps = rng.integers(-2, 3, per_symbol).cumsum()
        price = np.maximum(1000, 50_000 + steps * 50).astype(np.int64)
        volume = rng.integers(1, 300, per_symbol).astype(np.int64)
        cols["symbol"].append(np.full(per_symbol, symbol))
        cols["ts"].append(ts)
        cols["price"].append(price)
        cols["volume"].append(volume)
        cols["cum"].append(volume.cumsum())
    n = sum(len(a) for a in cols["ts"])
    price = pa.array(np.concatenate(cols["price"])).cast(pa.decimal128(19, 0)).cast(PRICE_TYPE, safe=False)  # prices < 10^6
    return pa.Table.from_arrays(
        [
            pa.array(["KRX"] * n, pa.string()),
            pa.array(np.concatenate(cols["symbol"]).tolist(), pa.string()),
            pa.array(np.concatenate(cols["ts"])).cast(TS_TYPE),
            price,
            pa.array(np.concatenate(cols["volume"])),
            pa.array(np.concatenate(cols["cum"])),
            pa.nulls(n, pa.string()),
            pa.array(["sim"] * n, pa.string()),
            pa.nulls(n, TS_TYPE),
        ],
        schema=TICK_SCHEMA,
    )


HAND_SQL = """
SELECT time_bucket(INTERVAL '15 minutes', ts, TIMESTAMPTZ '2000-01-03 09:00:00+09') AS bucket,
       symbol,
       arg_min(price, cum_volume) AS open, max(price) AS high, min(price) AS low,
       arg_max(price, cum_volume) AS close, sum(volume) AS volume, count(*) AS trade_count,
       sum(price * volume) AS turnover
FROM read_parquet($files, hive_partitioning = true)
WHERE ts >= $start AND ts < $end {symbol_filter}
GROUP BY ALL
ORDER BY symbol, bucket
"""


def timed(fn, repeat: int) -> tuple[float, object]:
    result = fn()  # warm-up, also the answer we check
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--ticks-per-day", type=int, default=20_000, help="case A: trades of the one symbol per trading date")
    ap.add_argument("--symbols", type=int, default=200, help="case B: symbols on the one date")
    ap.add_argument("--ticks-per-symbol", type=int, default=5_000, help="case B: trades per symbol")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lake", type=Path, help="lake directory to build (default: a temporary one)")
    args = ap.parse_args(argv)

    tmp = None
    if args.lake is None:
        tmp = tempfile.TemporaryDirectory(prefix="tv-bench-query-")
        args.lake = Path(tmp.name) / "lake"
    settings = Settings(lake_dir=args.lake, pg_schema="bench_query_unused")
    rng = np.random.default_rng(42)
    days = krx.trading_days(date(args.year, 1, 1), date(args.year, 12, 31))
    one = "005930"
    others = [f"{i:06d}" for i in range(100, 100 + args.symbols - 1)]
    busy_day = days[len(days) // 2]

    lake = Lake(settings)
    lake.init()
    t0 = time.perf_counter()
    rows = 0
    for day in days:
        table = day_ticks(rng, day, [one], args.ticks_per_day)
        if day == busy_day:
            table = pa.concat_tables([table, day_ticks(rng, day, others, args.ticks_per_symbol)])
        rows += lake.upsert(table)
    load_s = time.perf_counter() - t0
    lake.close()
    print(f"lake: {rows:,} ticks over {len(days)} trading dates written in {load_s:.1f}s ({rows / load_s:,.0f} rows/s)", flush=True)

    files = sorted(str(p) for p in (args.lake / "data").rglob("*.parquet"))
    report: dict[str, object] = {"ticks": rows, "trading_days": len(days), "files": len(files), "repeat": args.repeat}
    with Vault(settings) as vault:
        import duckdb

        hand = duckdb.connect()
        hand.execute("SET TimeZone = 'UTC'")
        cases = {
            "one_symbol_year_15m": ([one], datetime(args.year, 1, 1, tzinfo=KST), datetime(args.year + 1, 1, 1, tzinfo=KST)),
            "all_symbols_day_15m": (None, datetime.combine(busy_day, datetime.min.time(), KST),
                                    datetime.combine(busy_day, datetime.min.time(), KST) + timedelta(days=1)),
        }
        for name, (symbols, start, end) in cases.items():
            tv_s, tv = timed(lambda symbols=symbols, start=start, end=end: vault.candles(symbols, "15m", start, end, source="cold"), args.repeat)
            symbol_filter = "AND symbol = $symbol" if symbols else ""
            params = {"files": files, "start": start, "end": end} | ({"symbol": symbols[0]} if symbols else {})
            sql = HAND_SQL.format(symbol_filter=symbol_filter)
            hand_s, ref = timed(lambda sql=sql, params=params: hand.execute(sql, params).to_arrow_table(), args.repeat)
            same = tv.num_rows == ref.num_rows and tv.column("volume").to_pylist() == ref.column("volume").to_pylist()
            if not same:
                print(f"{name}: answers differ ({tv.num_rows} vs {ref.num_rows} bars) — benchmark invalid", file=sys.stderr)
                return 1
            ratio = tv_s / hand_s
            report[name] = {"bars": tv.num_rows, "tickvault_ms": round(tv_s * 1000, 1), "hand_sql_ms": round(hand_s * 1000, 1), "ratio": round(ratio, 2)}
            print(f"{name}: {tv.num_rows:,} bars  tickvault {tv_s * 1000:.1f} ms  hand-written DuckDB {hand_s * 1000:.1f} ms  ratio {ratio:.2f}", flush=True)
        hand.close()
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
