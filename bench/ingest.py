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
- dual_v2: the same with wire format v2 frames of 1000 trades (v1 vs v2 in the same run);
- peak RSS of the archiver process during the dual runs.

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
from common import DAY, TSDB_URL, Timer, emit, isolated_settings, ratio, say

from tickvault.core.config import Settings
from tickvault.core.stream import FrameLimits, GroupConsumer, Publisher, connect, connect_raw, group_info
from tickvault.dev.simulate import generate_day, publish
from tickvault.stores.contract import StreamPosition
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.copy import encode_binary_copy
from tickvault.stores.lake import Lake

RAW_TABLE = """
CREATE TABLE {s}.raw_ticks (symbol text NOT NULL, ts timestamptz NOT NULL, price_e4 bigint NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (symbol, ts, cum_volume)) PARTITION BY RANGE (ts);
CREATE TABLE {s}.raw_ticks_d PARTITION OF {s}.raw_ticks FOR VALUES FROM ('{d} 00:00+09') TO ('{d} 00:00+09'::timestamptz + interval '1 day');
CREATE TABLE {s}.raw_upsert (symbol text NOT NULL, ts timestamptz NOT NULL, price numeric(18,4) NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (symbol, ts, cum_volume)) PARTITION BY RANGE (ts);
CREATE TABLE {s}.raw_upsert_d PARTITION OF {s}.raw_upsert FOR VALUES FROM ('{d} 00:00+09') TO ('{d} 00:00+09'::timestamptz + interval '1 day');
"""
#: TimescaleDB mode's raw limit: the same rows into hypertables with 1-day chunks and the unique index
RAW_HYPERTABLES = """
CREATE TABLE {s}.raw_ticks (symbol text NOT NULL, ts timestamptz NOT NULL, price_e4 bigint NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (symbol, ts, cum_volume));
SELECT create_hypertable('{s}.raw_ticks', 'ts', chunk_time_interval => interval '1 day');
CREATE TABLE {s}.raw_upsert (symbol text NOT NULL, ts timestamptz NOT NULL, price numeric(18,4) NOT NULL,
  volume bigint NOT NULL, cum_volume bigint NOT NULL, side text, source text NOT NULL, received_at timestamptz,
  UNIQUE (symbol, ts, cum_volume));
SELECT create_hypertable('{s}.raw_upsert', 'ts', chunk_time_interval => interval '1 day');
"""


def batches(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def bench_hot(settings: Settings, table: pa.Table, prefix: str = "hot") -> dict[str, float]:
    """Sink and raw paths take turns batch by batch, so a busy neighbour on a shared machine
    slows all three alike instead of whichever phase it happens to overlap."""
    parts = batches(table, settings.hot_batch_size)
    store = HotStore(settings)
    store.init()
    payloads = [encode_binary_copy(p) for p in parts]  # client-side encoding is not the DB's limit
    ours = raw_copy = raw_upsert = 0.0
    with store.connect(autocommit=True) as conn:
        layout = RAW_HYPERTABLES if settings.hot_mode == "timescaledb" else RAW_TABLE
        conn.execute(layout.format(s=settings.pg_schema, d=DAY.isoformat()))
        conn.execute(f"CREATE TEMP TABLE raw_stage (LIKE {settings.pg_schema}.raw_ticks) ON COMMIT DELETE ROWS")
        for n, (part, payload) in enumerate(zip(parts, payloads)):
            with Timer() as t:
                store.write(part, StreamPosition(settings.stream, "hot", f"{n + 1}-0"))
            ours += t.seconds
            with Timer() as t:
                with conn.transaction(), conn.cursor() as cur, cur.copy(f"COPY {settings.pg_schema}.raw_ticks FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(payload)
            raw_copy += t.seconds
            with Timer() as t:
                with conn.transaction(), conn.cursor() as cur:
                    with cur.copy("COPY raw_stage FROM STDIN (FORMAT BINARY)") as cp:
                        cp.write(payload)
                    cur.execute(
                        f"INSERT INTO {settings.pg_schema}.raw_upsert SELECT symbol, ts, price_e4 * 0.0001, volume, cum_volume, "
                        "side, source, received_at FROM raw_stage ON CONFLICT DO NOTHING"
                    )
            raw_upsert += t.seconds
    store.close()
    store.close()
    n = table.num_rows
    p = prefix
    out = {
        f"{p}_ticks_per_s": n / ours,
        f"{p}_raw_copy_per_s": n / raw_copy,
        f"{p}_raw_staged_upsert_per_s": n / raw_upsert,
    }
    out[f"{p}_ratio_vs_raw_copy"] = ratio(out[f"{p}_ticks_per_s"], out[f"{p}_raw_copy_per_s"])
    out[f"{p}_ratio_vs_staged_upsert"] = ratio(out[f"{p}_ticks_per_s"], out[f"{p}_raw_staged_upsert_per_s"])
    mode = settings.hot_mode
    say(f"hot store ({mode}) vs raw binary COPY (unique index)", out[f"{p}_ticks_per_s"], out[f"{p}_raw_copy_per_s"])
    say(f"hot store ({mode}) vs raw staged COPY + ON CONFLICT", out[f"{p}_ticks_per_s"], out[f"{p}_raw_staged_upsert_per_s"])
    return out


def bench_cold(settings: Settings, table: pa.Table) -> dict[str, float]:
    """Sink and raw insert take turns batch by batch (see bench_hot)."""
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
        with Timer() as t:
            lake.write(part, StreamPosition(settings.stream, "cold", f"{n + 1}-0"))
        ours += t.seconds
        with Timer() as t:
            con.register("b", part)
            con.execute("INSERT INTO lake.ticks SELECT *, CAST(timezone('Asia/Seoul', ts) AS DATE) FROM b ORDER BY symbol, cum_volume")
            con.unregister("b")
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


def bench_raw_stream(settings: Settings, table: pa.Table, frames: FrameLimits | None = None) -> float:
    client = connect(settings.redis_dsn)
    for group in ("hot", "cold"):
        client.xgroup_create(settings.stream, group, id="0", mkstream=True)
    readers = [
        subprocess.Popen([sys.executable, __file__, "--drain", settings.redis_dsn, settings.stream, g]) for g in ("hot", "cold")
    ]
    with Timer() as t:
        publish(Publisher(client, settings.stream), table, frames=frames)
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


def bench_dual(settings: Settings, table: pa.Table, frames: FrameLimits | None = None, prefix: str = "dual") -> dict[str, float]:
    """XADD -> both stores; ``frames`` publishes wire v2 frames (``prefix`` names the figures)."""
    raw = bench_raw_stream(settings, table, frames)
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
            publish(Publisher(client, settings.stream), table, frames=frames)
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
    rss_prefix = "archiver" if prefix == "dual" else f"archiver_{prefix}"
    out = {
        f"{prefix}_ticks_per_s": table.num_rows / t.seconds,
        f"{prefix}_raw_stream_per_s": raw,
        f"{rss_prefix}_hot_peak_rss_mb": round(rss["hot"], 1),
        f"{rss_prefix}_cold_peak_rss_mb": round(rss["cold"], 1),
        f"{rss_prefix}_hot_peak_anon_mb": round(anon.peak["hot"], 1),
        f"{rss_prefix}_cold_peak_anon_mb": round(anon.peak["cold"], 1),
    }
    out[f"{prefix}_ratio_vs_raw_stream"] = ratio(out[f"{prefix}_ticks_per_s"], raw)
    say(f"{prefix} write XADD -> both stores vs raw stream", out[f"{prefix}_ticks_per_s"], raw)
    say("archiver peak RSS hot", rss["hot"], unit="MB")
    say("archiver peak RSS cold", rss["cold"], unit="MB")
    say("archiver peak private (anon) RSS hot", anon.peak["hot"], unit="MB")
    say("archiver peak private (anon) RSS cold", anon.peak["cold"], unit="MB")
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
    with isolated_settings("dual") as s:
        results.update(bench_dual(s, table))
    with isolated_settings("dualv2") as s:
        results.update(bench_dual(s, table, FrameLimits(max_trades=1000), prefix="dual_v2"))
    results["dual_v2_vs_v1"] = ratio(results["dual_v2_ticks_per_s"], results["dual_ticks_per_s"])
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
