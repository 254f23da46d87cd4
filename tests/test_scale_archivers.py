"""Many archivers, one lake: `tickvault archive` processes with their own consumer names (as on
different hosts) share each group's work on the lake's PostgreSQL catalog and S3 data, and one of
them is SIGKILLed mid-ingest. The stores must hold the truth exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import redis

from factories import DAY
from helpers import export, sort_key, subprocess_env, wait_until
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher, group_info
from tickvault.dev.simulate import generate_day, publish
from tickvault.services.sync.verify import verify
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


def start_archiver(s: Settings, group: str, consumer: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tickvault.cli", "archive", group, "--consumer", consumer],
                                env=subprocess_env(s, TICKVAULT_CLAIM_IDLE_MS="2000"), stdout=out, stderr=subprocess.STDOUT)


def test_two_archivers_per_group_and_a_sigkill_store_the_day_exactly_once(
        scale_settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    s = scale_settings
    truth = generate_day(DAY, symbols=8, ticks=16_000, seed=16)
    for store in (HotStore(s), Lake(s)):  # `tickvault init` comes first in a deployment
        store.init()
        store.close()
    logs = {name: tmp_path / f"{name}.log" for name in ("cold-a", "cold-b", "hot-a", "hot-b")}
    procs = {name: start_archiver(s, name.split("-")[0], f"{name}-host", log) for name, log in logs.items()}
    try:
        wait_until("all four archivers reading", lambda: all("started (stream" in p.read_text(errors="replace") for p in logs.values()))
        publisher = threading.Thread(target=publish, args=(Publisher(rclient, s.stream), truth),
                                     kwargs={"dup_rate": 0.02, "shuffle_window": 50, "seed": 16, "chunk": 500})
        publisher.start()
        # SIGKILL one cold archiver while it holds entries: the other must take them over

        def cold_a_holds_entries() -> bool:
            consumers = {c["name"]: c for c in rclient.xinfo_consumers(s.stream, "cold")}
            return consumers.get("cold-a-host", {}).get("pending", 0) > 0

        wait_until("cold-a holding entries", cold_a_holds_entries)
        procs["cold-a"].send_signal(signal.SIGKILL)
        procs["cold-a"].wait()
        publisher.join()

        def drained() -> bool:
            info = group_info(rclient, s.stream)
            return all(info[g]["lag"] == 0 and info[g]["pending"] == 0 for g in ("hot", "cold"))

        wait_until("both groups drained by the survivors", drained)
        consumers = {c["name"]: c for c in rclient.xinfo_consumers(s.stream, "cold")}
        assert consumers["cold-a-host"]["pending"] == 0  # what the killed one held was claimed
        for name in ("cold-b", "hot-a", "hot-b"):
            procs[name].send_signal(signal.SIGTERM)
        for name in ("cold-b", "hot-a", "hot-b"):
            assert procs[name].wait(timeout=60) == 0, logs[name].read_text(errors="replace")[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    expected = sort_key(truth)
    for source in ("hot", "cold"):
        got = export(s, source, tmp_path / f"{source}.parquet")
        assert got.num_rows == expected.num_rows, f"{source}: {got.num_rows} rows, truth {expected.num_rows}"
        assert got.equals(expected), f"{source} differs from the truth"
    hot_consumers = {c["name"] for c in rclient.xinfo_consumers(s.stream, "hot") if c["pending"] == 0}
    assert {"hot-a-host", "hot-b-host"} <= hot_consumers
    report = verify(s, DAY)  # hot == cold, no gaps, no duplicates
    assert report.consistent, report.reasons()
