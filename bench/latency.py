"""End-to-end latency at steady rates: received_at -> committed in each store.

A publisher sends ticks at a steady rate, stamping each chunk's ``received_at`` with the wall
clock just before its XADDs (what a collector does). Each archiver runs in its own process
(`tickvault archive` code: build_archiver) with an observer (``archiver.Commit``) that records,
for every row of every durable batch, ``committed_at - received_at``. ``committed_at`` is taken
after the sink's transaction committed and the entries were acked, so the figure is an upper
bound of "visible in the store". Ticks received in the first ``--warmup`` seconds are left out.

One run per rate (default 20k ticks/s, a busy single-venue market, and 60k ticks/s, the
two-venue open), every setting at its default; the publisher sends v2 frames as the collectors
do (one every ``frame_max_delay_ms``), or with ``--wire v1`` one entry per trade. The publisher's achieved rate is reported: a
figure whose publisher fell short of the rate measures the publisher, not the archivers.

    python bench/latency.py [--rates 20000,60000] [--seconds 30] [--wire v2|v1]      (last line: JSON of all figures)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DAY, emit, isolated_settings, say

from tickvault.core.config import Settings
from tickvault.core.frames import frame_fields
from tickvault.core.stream import connect, group_info
from tickvault.core.wire import WireEncoder
from tickvault.dev.simulate import generate_day

# --- archiver side (a child process) ---------------------------------------------------------


def run_archiver(group: str, out: str) -> None:
    """Archive ``group`` with a latency observer until SIGTERM, then save (received_us, latency_us)."""
    from tickvault.services.archiver import Commit, build_archiver, install_signal_handlers

    settings = Settings()
    archiver = build_archiver(settings, group, consumer=f"latency-{group}")
    received: list[np.ndarray] = []
    latency: list[np.ndarray] = []

    def observe(commit: Commit) -> None:
        got = commit.batch.column("received_at").cast(pa.int64())
        got = pc.drop_null(got).to_numpy()
        received.append(got)
        latency.append(int(commit.committed_at * 1e6) - got)

    archiver.observers.append(observe)
    install_signal_handlers(archiver.stop)
    archiver.run()
    archiver.store.close()
    np.save(out, np.stack([np.concatenate(received or [np.empty(0, np.int64)]), np.concatenate(latency or [np.empty(0, np.int64)])]))


# --- driver ----------------------------------------------------------------------------------


def _env(s: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env.update(
        TICKVAULT_PG_URL=s.pg_dsn, TICKVAULT_REDIS_URL=s.redis_dsn, TICKVAULT_PG_SCHEMA=s.pg_schema, TICKVAULT_STREAM=s.stream,
        TICKVAULT_LAKE_DIR=str(s.lake_dir), TICKVAULT_HOT_MODE=s.hot_mode, TICKVAULT_COLD_MAX_WAIT_MS=str(s.cold_max_wait_ms),
    )
    return env


def publish_steady(s: Settings, table: pa.Table, rate: int, seconds: float, wire: str) -> tuple[float, float]:
    """Send ``rate`` ticks/s for ``seconds``; returns (start epoch, achieved rate). ``wire`` "v2": one
    frame every ``frame_max_delay_ms`` (what a collector sends by default); "v1": one entry per trade,
    in 10 ms chunks."""
    encoder = WireEncoder(table)
    client = connect(s.redis_dsn)
    per_second = 1000 // max(1, s.frame_max_delay_ms) if wire == "v2" else 100
    per_chunk = max(1, rate // per_second)
    total = min(table.num_rows, int(rate * seconds))
    received_at = table.schema.get_field_index("received_at")
    started_wall, started = time.time(), time.monotonic()
    sent = 0
    while sent < total:
        n = min(per_chunk, total - sent)
        now = datetime.now(UTC)
        pipe = client.pipeline(transaction=False)
        if wire == "v2":
            chunk = table.slice(sent, n)
            chunk = chunk.set_column(received_at, chunk.schema.field(received_at), pa.array([now] * n, chunk.schema.field(received_at).type))
            pipe.xadd(s.stream, frame_fields(chunk))
        else:
            for i in range(sent, sent + n):
                fields = encoder.fields(i)
                fields["received_at"] = now.isoformat()
                pipe.xadd(s.stream, fields)
        pipe.execute()
        sent += n
        wait = started + sent / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    client.close()
    return started_wall, sent / (time.monotonic() - started)


def one_run(table: pa.Table, rate: int, seconds: float, warmup: float, tag: str, wire: str) -> dict[str, float]:
    out: dict[str, float] = {}
    with isolated_settings(f"lat{rate // 1000}k") as s, tempfile.TemporaryDirectory(prefix="tvbench-lat-") as tmp:
        from tickvault.stores.hot import HotStore
        from tickvault.stores.lake import Lake

        store, lake = HotStore(s), Lake(s)
        store.init(), lake.init()
        store.close(), lake.close()
        files = {g: str(Path(tmp) / f"{g}.npy") for g in ("hot", "cold")}
        procs = {g: subprocess.Popen([sys.executable, __file__, "--archiver", g, files[g]], env=_env(s)) for g in ("hot", "cold")}
        try:
            time.sleep(3.0)  # both connected and blocking on the stream
            started, achieved = publish_steady(s, table, rate, seconds, wire)
            client = redis.Redis.from_url(s.redis_dsn, decode_responses=True)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                info = group_info(client, s.stream)
                if all(info.get(g, {}).get("lag", 1) == 0 and info.get(g, {}).get("pending", 1) == 0 for g in ("hot", "cold")):
                    break
                time.sleep(0.1)
            client.close()
        finally:
            for p in procs.values():
                p.send_signal(signal.SIGTERM)
            for p in procs.values():
                p.wait(120)
        label = f"{rate:,}/s"
        with Lake(s) as lake:
            out[f"latency{tag}_cold_files"] = lake.file_count()  # Parquet files the cold archiver left (inlined commits: none)
        out[f"latency{tag}_rate_achieved"] = round(achieved)
        say(f"latency run at {label}: publish rate achieved", achieved)
        for g in ("hot", "cold"):
            received, latency = np.load(files[g])
            keep = received >= (started + warmup) * 1e6
            ms = latency[keep] / 1000.0
            if ms.size == 0:
                continue
            p50, p99 = np.percentile(ms, [50, 99])
            out[f"latency{tag}_{g}_p50_ms"] = round(float(p50), 1)
            out[f"latency{tag}_{g}_p99_ms"] = round(float(p99), 1)
            out[f"latency{tag}_{g}_max_ms"] = round(float(ms.max()), 1)
            print(f"  e2e latency {g:<4} ({label}): p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   max {ms.max():8.1f} ms   ({ms.size:,} ticks)", flush=True)
    return out


def run(rates: list[int], seconds: float, warmup: float, wire: str) -> dict[str, float]:
    table = generate_day(DAY, symbols=50, ticks=int(max(rates) * seconds) + 1, seed=5)
    print(f"latency: {', '.join(f'{r:,}' for r in rates)} ticks/s for {seconds:.0f} s each (first {warmup:.0f} s left out), "
          f"wire {wire}, {os.cpu_count()} cores", flush=True)
    results: dict[str, float] = {}
    for rate in rates:
        results.update(one_run(table, rate, seconds, warmup, f"_{rate // 1000}k" + ("" if wire == "v2" else "_v1"), wire))
    return results


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--archiver":
        run_archiver(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="20000,60000", help="comma-separated ticks per second, one run each")
    parser.add_argument("--seconds", type=float, default=30.0, help="publishing time per run")
    parser.add_argument("--wire", choices=("v2", "v1"), default="v2", help="v2: frames as collectors send them (default); v1: one entry per trade")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the start left out of the figures")
    args = parser.parse_args()
    emit(run([int(r) for r in args.rates.split(",")], args.seconds, args.warmup, args.wire))


if __name__ == "__main__":
    main()
