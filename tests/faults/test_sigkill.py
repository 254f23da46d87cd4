"""SIGKILL of one archiver at random moments while ticks keep arriving; the other runs on.

Each round restarts the victim, waits until it is reading the stream, lets it work for a
random time and kills it with SIGKILL — so kills land while a batch is being read,
written to its store, committed, or acked. Recorded per archiver: kills that found the
group holding unacked (pending) entries — read but not yet acked, by this run or left by
the previous kill and not yet re-processed. The surviving archiver must not be disturbed; in the end both stores hold
exactly the truth.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import redis
from faultkit import ArchiverProcess, RetryingPublisher, assert_truth, in_flight, record, scale, truth_check, wait_drained

from factories import DAY
from tickvault.core.config import Settings
from tickvault.dev.simulate import generate_day


def kill_rounds(target: ArchiverProcess, rounds: int, max_delay: float, rng: random.Random, client: redis.Redis,
                s: Settings, tally: dict[str, int]) -> None:
    """Restart ``target``, wait until it reads, let it work a random while, SIGKILL it; ``rounds`` times."""
    for _ in range(rounds):
        began = time.monotonic()
        target.start()
        target.wait_started()
        tally["start_s"] += time.monotonic() - began
        time.sleep(rng.uniform(0.0, max_delay))
        tally["in_flight"] += in_flight(client, s, target.group) > 0
        target.kill()
        tally["kills"] += 1


def test_sigkill_each_archiver_at_random_points(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    """Hot and cold run as separate processes, each killed on its own random schedule."""
    rounds = scale(12, 100)
    # Kill delays: hot writes 5k-entry batches (~0.1-0.3 s each); cold gathers up to 1 s per commit.
    max_delay = {"hot": 0.8, "cold": 1.6}
    s = settings.model_copy(update={"retry_max_s": 1.0})
    day = generate_day(DAY, symbols=20, ticks=scale(300_000, 2_000_000), seed=31)
    publisher = RetryingPublisher(s.redis_dsn, s.stream)
    stop_publishing = threading.Event()
    thread = threading.Thread(
        target=publisher.publish_day, args=(day,),
        kwargs={"rate": 3000, "dup_rate": 0.01, "shuffle_window": 50, "seed": 31, "stop": stop_publishing}, daemon=True,
    )
    archivers = {g: ArchiverProcess(s, g, tmp_path / f"{g}.log") for g in ("hot", "cold")}
    tallies = {g: {"kills": 0, "in_flight": 0, "start_s": 0.0} for g in archivers}
    errors: list[BaseException] = []

    def loop(group: str) -> None:
        try:
            kill_rounds(archivers[group], rounds, max_delay[group], random.Random(f"{group}-{rounds}"), rclient, s, tallies[group])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    thread.start()
    loops = [threading.Thread(target=loop, args=(g,)) for g in archivers]
    try:
        for t in loops:
            t.start()
        for t in loops:
            t.join()
        stop_publishing.set()
        thread.join()
        assert not errors, errors
        for a in archivers.values():
            a.start()
        wait_drained(rclient, s, ("hot", "cold"))
    finally:
        stop_publishing.set()
        codes = {g: a.stop() for g, a in archivers.items()}
    assert codes == {"hot": 0, "cold": 0}, codes
    for group, tally in tallies.items():
        assert tally["kills"] >= rounds, tallies
        assert tally["in_flight"] > 0, f"no kill of {group} found unacked entries; the scenario tested nothing"
    truth = publisher.sent_truth(day)
    report = truth_check(s, truth, tmp_path)
    for group, tally in tallies.items():
        record(f"SIGKILL {group} archiver (other one running)", report, publisher.stats.entries, tally["kills"], "SIGKILL",
               kills_with_unacked_entries=tally["in_flight"], restart_seconds=round(tally["start_s"], 1))
    assert_truth(report)
