"""A collector bursts at 10x the steady rate: the archivers absorb the backlog, lose nothing.

The publisher sends at a steady rate, then at ten times that rate, then steady again. The
backlog (lag + pending per group) is sampled throughout and recorded; it must drain back
to zero afterwards, and both stores must end equal to the truth. The rates reached are recorded, not asserted: speed
is measured in bench/.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import redis
from faultkit import ArchiverProcess, RetryingPublisher, assert_truth, record, scale, truth_check, wait_drained

from factories import DAY
from tickvault.core.config import Settings
from tickvault.core.stream import group_info
from tickvault.core.wire import WireEncoder
from tickvault.dev.simulate import generate_day, wire_order


def test_burst_of_ten_times_the_steady_rate(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    steady = scale(1_000, 2_000)  # ticks/s
    phases = [("steady", steady, 4.0), ("burst", 10 * steady, scale(3.0, 10.0)), ("steady", steady, 4.0)]
    total = int(sum(rate * seconds for _, rate, seconds in phases))
    truth = generate_day(DAY, symbols=20, ticks=total, seed=71)
    encoder = WireEncoder(truth)
    order = wire_order(truth.num_rows, dup_rate=0.01, shuffle_window=50, seed=71)
    publisher = RetryingPublisher(settings.redis_dsn, settings.stream, chunk=200)
    archivers = [ArchiverProcess(settings, g, tmp_path / f"{g}.log") for g in ("hot", "cold")]
    for a in archivers:
        a.start()
    for a in archivers:
        a.wait_started()

    backlog: list[tuple[float, int, int]] = []  # (time, hot, cold)
    sampling = threading.Event()

    def sample() -> None:
        client = redis.Redis.from_url(settings.redis_dsn, decode_responses=True)
        while not sampling.is_set():
            info = group_info(client, settings.stream)
            backlog.append((time.monotonic(), *(int(info.get(g, {}).get("lag", 0) or 0) + int(info.get(g, {}).get("pending", 0)) for g in ("hot", "cold"))))
            time.sleep(0.1)
        client.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    achieved: dict[str, float] = {}
    client = redis.Redis.from_url(settings.redis_dsn, decode_responses=True)
    position = 0
    try:
        for n, (name, rate, seconds) in enumerate(phases):
            rows = order[position : position + int(rate * seconds)] if n < len(phases) - 1 else order[position:]
            wire = [encoder.fields(int(i)) for i in rows]  # encoded up front: the burst is limited by Redis, not by us
            started = time.monotonic()
            for start in range(0, len(rows), publisher.chunk):
                part = wire[start : start + publisher.chunk]
                publisher._send_chunk(client, part)
                wait = started + (start + len(part)) / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            achieved[f"{name}{n}"] = round(len(rows) / (time.monotonic() - started))
            position += len(rows)
        burst_end = time.monotonic()
        wait_drained(rclient, settings, ("hot", "cold"))
        drained_after = time.monotonic() - burst_end
    finally:
        sampling.set()
        sampler.join()
        client.close()
        codes = [a.stop() for a in archivers]
    assert codes == [0, 0], codes
    assert achieved["burst1"] > 2 * max(achieved["steady0"], 1), f"no burst happened: {achieved}"
    report = truth_check(settings, truth, tmp_path)
    peak = {"hot": max(b[1] for b in backlog), "cold": max(b[2] for b in backlog)}
    record("collector burst 10x steady rate", report, publisher.stats.entries, 1, "burst",
           achieved_rates=achieved, burst_factor_achieved=round(achieved["burst1"] / max(achieved["steady0"], 1), 1), peak_backlog=peak,
           drained_s_after_last_phase=round(drained_after, 1))
    assert_truth(report)
