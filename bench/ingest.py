"""Ingest throughput of each sink and of the whole pipeline, next to the raw limits
measured in the same run on the same rows:

- hot:  HotSink.write (staged COPY + ON CONFLICT + candles + checkpoint) vs a raw binary
        COPY of the same rows (prices as scaled bigint: no numeric conversion), and vs a raw
        staged-COPY upsert into the same layout (numeric prices, unique key; no candles, no
        checkpoint); in PostgreSQL mode, and in TimescaleDB mode when TICKVAULT_BENCH_TSDB_URL is set;
- cold: LakeSink.write (anti-join dedup + checkpoint, one DuckLake commit) vs a raw
        DuckLake INSERT of the same batches;
- dual: XADD -> both archivers (separate processes) until both groups are drained, vs
        pipelined XADD + two consumer groups' XREADGROUP/XACK with no sink;
- peak RSS of the archiver process during the dual run.

    python bench/ingest.py [--ticks N]     (last line: JSON of all figures)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DAY, TSDB_URL, WIRE_FORMATS, Timer, emit, isolated_settings, ratio, say

from tickvault.core.config import Settings
from tickvault.core.stream import GroupConsumer, Publisher, connect, connect_raw, group_info
from tickvault.dev.simulate import generate_day, publish
from tickvault.stores.contract import StreamPosition
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.copy import encode_binary_copy
from tickvault.stores.lake import Lake

RAW_TABLE = """
CREATE TABLE {s}.raw_ticks (venue text NOT NULL, symbol text NOT NULL, ts timestamptz NOT NULL, price_e4 bigint NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (venue, symbol, ts, cum_volume)) PARTITION BY RANGE (ts);
CREATE TABLE {s}.raw_ticks_d PARTITION OF {s}.raw_ticks FOR VALUES FROM ('{d} 00:00+09') TO ('{d} 00:00+09'::timestamptz + interval '1 day');
CREATE TABLE {s}.raw_upsert (venue text NOT NULL, symbol text NOT NULL, ts timestamptz NOT NULL, price numeric(18,4) NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (venue, symbol, ts, cum_volume)) PARTITION BY RANGE (ts);
CREATE TABLE {s}.raw_upsert_d PARTITION OF {s}.raw_upsert FOR VALUES FROM ('{d} 00:00+09') TO ('{d} 00:00+09'::timestamptz + interval '1 day');
"""
#: TimescaleDB mode's raw limit: the same rows into hypertables with 1-day chunks and the unique index
RAW_HYPERTABLES = """
CREATE TABLE {s}.raw_ticks (venue text NOT NULL, symbol text NOT NULL, ts timestamptz NOT NULL, price_e4 bigint NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (venue, symbol, ts, cum_volume));
SELECT create_hypertable('{s}.raw_ticks', 'ts', chunk_time_interval => interval '1 day');
CREATE TABLE {s}.raw_upsert (venue text NOT NULL, symbol text NOT NULL, ts timestamptz NOT NULL, price numeric(18,4) NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (venue, symbol, ts, cum_volume));
SELECT create_hypertable('{s}.raw_upsert', 'ts', chunk_time_interval => interval '1 day');
"""

#: the cold raw limit: the same batch into the same table, no anti-join, no checkpoint (no
#: ORDER BY either: the table is SORTED BY, so DuckLake sorts each file it writes)
RAW_LAKE_INSERT = """
INSERT INTO lake.ticks (venue, symbol, ts, price, volume, cum_volume, side, source, received_at, trade_date)
SELECT venue, symbol, ts, price, volume, cum_volume, side, source, received_at,
       DATE '1970-01-01' + CAST((epoch_us(ts) + 32400000000) // 86400000000 AS INTEGER)
FROM b
"""

DEFERRED_FOLD_MS = 1000  # hot_candle_fold_ms of the deferred-candles variant

NOCANDLES_TABLE = """
CREATE TABLE {s}.ticks_nocandles (LIKE {s}.ticks INCLUDING ALL) PARTITION BY RANGE (ts);
CREATE TABLE {s}.ticks_nocandles_d PARTITION OF {s}.ticks_nocandles
  FOR VALUES FROM ('{d} 00:00+09') TO ('{d} 00:00+09'::timestamptz + interval '1 day');
"""
#: the hot sink's own insert without the candle fold (its ORDER BY, key, numeric prices), into a
#: copy of ticks: what the sink would cost if candles were not maintained in the write
HOT_TICKS_ONLY = """
INSERT INTO {s}.ticks_nocandles (venue, symbol, ts, price, volume, cum_volume, side, source, received_at)
SELECT venue, symbol, ts, price_e4 * 0.0001, volume, cum_volume, side, source, received_at
FROM pg_temp.tv_stage ORDER BY venue, symbol, ts, cum_volume
ON CONFLICT (venue, symbol, ts, cum_volume) DO NOTHING
"""


def batches(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def bench_hot(settings: Settings, table: pa.Table, prefix: str = "hot") -> dict[str, float]:
    """Sink and raw paths take turns batch by batch, so a busy neighbour on a shared machine
    slows all three alike instead of whichever phase it happens to overlap."""
    parts = batches(table, settings.hot_batch_size)
    store = HotStore(settings)
    store.init()
    deferred = None
    if settings.hot_mode == "postgres":  # the same sink with deferred candles, in a schema of its own
        deferred_settings = settings.model_copy(update={"pg_schema": f"{settings.pg_schema}_deferred", "hot_candle_fold_ms": DEFERRED_FOLD_MS})
        deferred = HotStore(deferred_settings)
        deferred.init()
    payloads = [encode_binary_copy(p) for p in parts]  # client-side encoding is not the DB's limit
    ours = raw_copy = raw_upsert = no_candles = deferred_s = 0.0
    ticks_only = HOT_TICKS_ONLY.format(s=settings.pg_schema)
    with store.connect(autocommit=True) as conn:
        layout = RAW_HYPERTABLES if settings.hot_mode == "timescaledb" else RAW_TABLE
        conn.execute(layout.format(s=settings.pg_schema, d=DAY.isoformat()))
        conn.execute(f"CREATE TEMP TABLE raw_stage (LIKE {settings.pg_schema}.raw_ticks) ON COMMIT DELETE ROWS")
        if settings.hot_mode == "postgres":
            conn.execute(NOCANDLES_TABLE.format(s=settings.pg_schema, d=DAY.isoformat()))
        for n, (part, payload) in enumerate(zip(parts, payloads)):
            with Timer() as t:
                store.write(part, StreamPosition(settings.stream, "hot", f"{n + 1}-0"))
            ours += t.seconds
            if deferred is not None:
                with Timer() as t:
                    deferred.write(part, StreamPosition(settings.stream, "hot", f"{n + 1}-0"))
                deferred_s += t.seconds
            with Timer() as t:
                with conn.transaction(), conn.cursor() as cur, cur.copy(f"COPY {settings.pg_schema}.raw_ticks FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(payload)
            raw_copy += t.seconds
            with Timer() as t:
                with conn.transaction(), conn.cursor() as cur:
                    with cur.copy("COPY raw_stage FROM STDIN (FORMAT BINARY)") as cp:
                        cp.write(payload)
                    cur.execute(
                        f"INSERT INTO {settings.pg_schema}.raw_upsert SELECT venue, symbol, ts, price_e4 * 0.0001, volume, cum_volume, "
                        "side, source, received_at FROM raw_stage ON CONFLICT DO NOTHING"
                    )
            raw_upsert += t.seconds
            if settings.hot_mode == "postgres":  # the profile of the sink: its own write without the candle fold
                with Timer() as t:
                    with conn.transaction(), conn.cursor() as cur:
                        cur.execute(store.sql("write", "create_stage"))
                        with cur.copy(store.sql("write", "copy_stage")) as cp:
                            cp.write(payload)
                        cur.execute(ticks_only)
                        cur.execute(store.sql("write", "set_checkpoint"),
                                    {"stream": settings.stream, "grp": "nocandles", "last_id": f"{n + 1}-0"})
                no_candles += t.seconds
    store.close()
    if deferred is not None:
        with Timer() as t:
            deferred.fold_candles()  # the last deltas: part of the sink's work
        deferred_s += t.seconds
        with deferred.connect(autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{deferred.schema}" CASCADE')
        deferred.close()
    n = table.num_rows
    p = prefix
    out = {
        f"{p}_ticks_per_s": n / ours,
        f"{p}_raw_copy_per_s": n / raw_copy,
        f"{p}_raw_staged_upsert_per_s": n / raw_upsert,
    }
    out[f"{p}_ratio_vs_raw_copy"] = ratio(out[f"{p}_ticks_per_s"], out[f"{p}_raw_copy_per_s"])
    out[f"{p}_ratio_vs_staged_upsert"] = ratio(out[f"{p}_ticks_per_s"], out[f"{p}_raw_staged_upsert_per_s"])
    if deferred_s:
        out[f"{p}_deferred_candles_per_s"] = n / deferred_s
        out[f"{p}_deferred_candles_ratio_vs_staged_upsert"] = ratio(n / deferred_s, out[f"{p}_raw_staged_upsert_per_s"])
        say(f"hot store, deferred candles (fold every {DEFERRED_FOLD_MS} ms)", n / deferred_s, out[f"{p}_raw_staged_upsert_per_s"])
    if no_candles:
        out[f"{p}_without_candles_per_s"] = n / no_candles
        out[f"{p}_without_candles_ratio_vs_staged_upsert"] = ratio(n / no_candles, out[f"{p}_raw_staged_upsert_per_s"])
        say("hot store's write without the candle fold (profile)", n / no_candles, out[f"{p}_raw_staged_upsert_per_s"])
    mode = settings.hot_mode
    say(f"hot store ({mode}) vs raw binary COPY (unique index)", out[f"{p}_ticks_per_s"], out[f"{p}_raw_copy_per_s"])
    say(f"hot store ({mode}) vs raw staged COPY + ON CONFLICT", out[f"{p}_ticks_per_s"], out[f"{p}_raw_staged_upsert_per_s"])
    return out


def bench_cold(settings: Settings, table: pa.Table) -> dict[str, float]:
    """Sink and raw insert take turns batch by batch (see bench_hot), each going first every other batch."""
    parts = batches(table, settings.cold_batch_size)
    lake = Lake(settings)
    lake.init()
    raw_settings = settings.model_copy(update={"lake_dir": Path(settings.lake_dir).parent / "raw-lake"})
    raw_lake = Lake(raw_settings)
    raw_lake.init()
    raw_lake.close()
    con = raw_lake.connect()
    ours = raw = 0.0
    for n, part in enumerate(parts):
        for sink in (True, False) if n % 2 == 0 else (False, True):  # who goes first alternates
            with Timer() as t:
                if sink:
                    lake.write(part, StreamPosition(settings.stream, "cold", f"{n + 1}-0"))
                else:
                    con.register("b", part)
                    con.execute(RAW_LAKE_INSERT)
                    con.unregister("b")
            if sink:
                ours += t.seconds
            else:
                raw += t.seconds
    con.close()
    lake.close()
    n = table.num_rows
    out = {"cold_ticks_per_s": n / ours, "cold_raw_lake_write_per_s": n / raw}
    out["cold_ratio_vs_raw"] = ratio(out["cold_ticks_per_s"], out["cold_raw_lake_write_per_s"])
    say("cold lake vs raw DuckLake INSERT", out["cold_ticks_per_s"], out["cold_raw_lake_write_per_s"])
    return out


def _drain_raw(url: str, stream: str, group: str) -> None:
    """No-sink consumer: XREADGROUP COUNT 1000 + XACK until the stream is drained."""
    consumer = GroupConsumer(connect_raw(url), stream, group, "raw")
    idle = 0
    while idle < 3:
        entries = consumer.read(1000, 100)
        if entries:
            idle = 0
            consumer.ack([i for i, _ in entries])
        else:
            idle += 1


def bench_raw_stream(settings: Settings, table: pa.Table) -> float:
    client = connect(settings.redis_dsn)
    for group in ("hot", "cold"):
        client.xgroup_create(settings.stream, group, id="0", mkstream=True)
    readers = [
        subprocess.Popen([sys.executable, __file__, "--drain", settings.redis_dsn, settings.stream, g]) for g in ("hot", "cold")
    ]
    with Timer() as t:
        publish(Publisher(client, settings.stream), table)
        for r in readers:
            r.wait()
    client.delete(settings.stream)
    return table.num_rows / (t.seconds - 0.3)  # readers stop after 3 idle 100 ms reads


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env.update(
        TICKVAULT_PG_URL=settings.pg_dsn, TICKVAULT_REDIS_URL=settings.redis_dsn, TICKVAULT_PG_SCHEMA=settings.pg_schema,
        TICKVAULT_STREAM=settings.stream, TICKVAULT_LAKE_DIR=str(settings.lake_dir), TICKVAULT_HOT_MODE=settings.hot_mode,
        TICKVAULT_COLD_MAX_WAIT_MS=str(settings.cold_max_wait_ms),
    )
    return env


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def anon_rss_mb(pid: int) -> float:
    """Private (anonymous) resident memory: VmHWM also counts shared library pages
    (DuckDB with its extensions, pyarrow, psycopg: ~110 MB of file-backed pages)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class AnonPeak:
    """Samples RssAnon of some processes every 50 ms and keeps the maximum."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for g, pid in self.pids.items():
                self.peak[g] = max(self.peak[g], anon_rss_mb(pid))
            self._stop.wait(0.05)

    def __enter__(self) -> AnonPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def archive_until_drained(settings: Settings, table: pa.Table, wire: str = "v1") -> dict[str, float]:
    """Publish ``table`` at full speed in ``wire`` format to `tickvault archive hot` and `cold`
    (separate processes, started and waiting first); returns the seconds until both groups
    are drained (nothing lagging, nothing pending) and each archiver's peak RSS."""
    HotStore(settings).init()
    Lake(settings).init()
    client = connect(settings.redis_dsn)
    procs = {
        g: subprocess.Popen([sys.executable, "-m", "tickvault.cli", "--log-level", "WARNING", "archive", g], env=_env(settings))
        for g in ("hot", "cold")
    }
    try:
        time.sleep(2.0)  # both archivers connected and waiting
        with AnonPeak({g: p.pid for g, p in procs.items()}) as anon, Timer() as t:
            WIRE_FORMATS[wire](Publisher(client, settings.stream), table)
            while True:
                info = group_info(client, settings.stream)
                if all(info.get(g, {}).get("lag", 1) == 0 and info.get(g, {}).get("pending", 1) == 0 for g in ("hot", "cold")):
                    break
                time.sleep(0.05)
        rss = {g: peak_rss_mb(p.pid) for g, p in procs.items()}
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        client.close()
    return {
        "seconds": t.seconds,
        "hot_peak_rss_mb": round(rss["hot"], 1),
        "cold_peak_rss_mb": round(rss["cold"], 1),
        "hot_peak_anon_mb": round(anon.peak["hot"], 1),
        "cold_peak_anon_mb": round(anon.peak["cold"], 1),
    }


def bench_dual(table: pa.Table, hot_raw_upsert: float, tsdb_raw_upsert: float | None = None) -> dict[str, float]:
    """Dual write per wire format, next to the raw stream and the hot store's raw staged upsert;
    with a TimescaleDB server also v2 with the hot store in TimescaleDB mode, next to that
    server's raw staged upsert."""
    out: dict[str, float] = {}
    with isolated_settings("raw") as s:
        raw = bench_raw_stream(s, table)
    out["dual_raw_stream_per_s"] = raw
    for wire in WIRE_FORMATS:
        with isolated_settings(f"dual{wire}") as s:
            run = archive_until_drained(s, table, wire)
        key = "dual" if wire == "v1" else f"dual_{wire}"
        rate = table.num_rows / run["seconds"]
        out[f"{key}_ticks_per_s"] = rate
        out[f"{key}_ratio_vs_raw_stream"] = ratio(rate, raw)
        out[f"{key}_ratio_vs_hot_raw_staged_upsert"] = ratio(rate, hot_raw_upsert)
        say(f"dual write ({wire}) XADD -> both stores vs raw stream", rate, raw)
        say(f"dual write ({wire}) vs hot raw staged upsert", rate, hot_raw_upsert)
        if wire == "v1":
            for g in ("hot", "cold"):
                out[f"archiver_{g}_peak_rss_mb"] = run[f"{g}_peak_rss_mb"]
                out[f"archiver_{g}_peak_anon_mb"] = run[f"{g}_peak_anon_mb"]
                say(f"archiver peak RSS (VmHWM) {g}", run[f"{g}_peak_rss_mb"], unit="MB")
                say(f"archiver peak private RSS (RssAnon) {g}", run[f"{g}_peak_anon_mb"], unit="MB")
        else:
            out[f"{wire}_vs_v1_dual_ratio"] = ratio(rate, out["dual_ticks_per_s"])
    if TSDB_URL and tsdb_raw_upsert:  # the owner's production mode: candles are continuous aggregates
        with isolated_settings("dualts", pg_url=TSDB_URL, hot_mode="timescaledb") as s:
            run = archive_until_drained(s, table, "v2")
        rate = table.num_rows / run["seconds"]
        out["dual_v2_tsdb_ticks_per_s"] = rate
        out["dual_v2_tsdb_ratio_vs_hot_raw_staged_upsert"] = ratio(rate, tsdb_raw_upsert)
        say("dual write (v2, hot in TimescaleDB mode) vs its hot raw staged upsert", rate, tsdb_raw_upsert)
    return out


def run(ticks: int) -> dict[str, float]:
    table = generate_day(DAY, symbols=50, ticks=ticks, seed=1)
    print(f"ingest: {ticks:,} ticks, {os.cpu_count()} cores", flush=True)
    results: dict[str, float] = {"ingest_ticks": ticks}
    with isolated_settings("hot") as s:
        results.update(bench_hot(s, table))
    if TSDB_URL:
        with isolated_settings("hotts", pg_url=TSDB_URL, hot_mode="timescaledb") as s:
            results.update(bench_hot(s, table, prefix="hot_tsdb"))
    with isolated_settings("cold") as s:
        results.update(bench_cold(s, table))
    results.update(bench_dual(table, results["hot_raw_staged_upsert_per_s"], results.get("hot_tsdb_raw_staged_upsert_per_s")))
    return {k: (round(v) if isinstance(v, float) and v > 100 else v) for k, v in results.items()}


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--drain":
        _drain_raw(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    emit(run(parser.parse_args().ticks))


if __name__ == "__main__":
    main()
