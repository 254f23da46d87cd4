"""PostgreSQL and Redis restarted under the running pipeline — servers this test owns.

Never the machine's shared servers: each test starts an embedded PostgreSQL or Redis
(tickvault.dev.embedded) in its own temp directory and stops/kills only that.

PostgreSQL: alternately a fast shutdown (SIGINT) and an immediate shutdown (SIGQUIT: no
checkpoint, crash recovery at the next start — what a crash of the server looks like).
The hot archiver must retry with backoff and catch up; the cold archiver is not held up.

Redis (AOF on): the guarantee depends on how Redis stops and on ``appendfsync``:
- a clean restart (SIGTERM -> SHUTDOWN, AOF flushed) loses nothing, with any fsync policy;
- a SIGKILL of redis-server loses nothing that Redis acknowledged when the AOF is fsynced
  before the reply (``appendfsync always``), and in practice also with ``everysec``
  because the data is already in the kernel's page cache — but ``everysec`` promises only
  "at most ~1 s lost" for an OS crash or power cut, which this suite cannot stage.
So the test runs clean restarts under ``everysec`` (the production setting of
deploy/docker-compose) and SIGKILLs under ``always``, and asserts zero loss for both.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
from faultkit import ArchiverProcess, RetryingPublisher, assert_truth, record, scale, truth_check, wait_drained

from factories import DAY
from tickvault.core.config import Settings
from tickvault.dev.simulate import generate_day


def _crash(server) -> None:
    """Immediate shutdown of an embedded server's main process (SIGQUIT for PostgreSQL: like a crash)."""
    server.proc.send_signal(signal.SIGQUIT)
    server.proc.wait(30)
    server.stop()  # the process is gone; this only forgets it so start() spawns a new one


@pytest.fixture
def owned_redis(tmp_path: Path):
    from tickvault.dev.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.close()


def _publisher_thread(s: Settings, day, rate: float, seed: int) -> tuple[RetryingPublisher, threading.Event, threading.Thread]:
    publisher = RetryingPublisher(s.redis_dsn, s.stream)
    stop = threading.Event()
    thread = threading.Thread(
        target=publisher.publish_day, args=(day,),
        kwargs={"rate": rate, "dup_rate": 0.01, "shuffle_window": 50, "seed": seed, "stop": stop}, daemon=True,
    )
    thread.start()
    return publisher, stop, thread


def test_postgres_restarts_during_ingest(owned_pg, settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    rounds = scale(4, 20)
    s = settings.model_copy(update={"pg_url": owned_pg.url, "retry_max_s": 1.0})
    rng = random.Random(41)
    day = generate_day(DAY, symbols=10, ticks=scale(200_000, 1_000_000), seed=41)
    hot, cold = ArchiverProcess(s, "hot", tmp_path / "hot.log"), ArchiverProcess(s, "cold", tmp_path / "cold.log")
    hot.start(), cold.start()
    hot.wait_started()
    publisher, stop, thread = _publisher_thread(s, day, 3000, 41)
    kinds = {"fast": 0, "immediate": 0}
    try:
        for n in range(rounds):
            time.sleep(rng.uniform(1.0, 3.0))
            if n % 2:
                _crash(owned_pg)
                kinds["immediate"] += 1
            else:
                owned_pg.stop()
                kinds["fast"] += 1
            time.sleep(rng.uniform(1.0, 4.0))
            owned_pg.start()
        time.sleep(1.0)
        stop.set()
        thread.join()
        wait_drained(rclient, s, ("hot", "cold"))
    finally:
        stop.set()
        codes = {"hot": hot.stop(), "cold": cold.stop()}
    assert codes == {"hot": 0, "cold": 0}, codes
    text = hot.log.read_text()
    assert "retrying" in text and "nothing is acked until it succeeds" in text, text[-3000:]
    report = truth_check(s, publisher.sent_truth(day), tmp_path)
    record("PostgreSQL restart during ingest", report, publisher.stats.entries, rounds, "PG restart (fast + immediate/crash)", **kinds)
    assert_truth(report)


def test_redis_restarts_with_aof_during_ingest(owned_redis, settings: Settings, tmp_path: Path) -> None:
    rounds = scale(4, 20)  # per kind
    s = settings.model_copy(update={"redis_url": owned_redis.url, "retry_max_s": 1.0})
    client = redis.Redis.from_url(owned_redis.url, decode_responses=True)
    rng = random.Random(43)
    day = generate_day(DAY, symbols=10, ticks=scale(200_000, 1_000_000), seed=43)
    hot, cold = ArchiverProcess(s, "hot", tmp_path / "hot.log"), ArchiverProcess(s, "cold", tmp_path / "cold.log")
    hot.start(), cold.start()
    hot.wait_started(), cold.wait_started()
    publisher, stop, thread = _publisher_thread(s, day, 3000, 43)
    kinds = {"clean restart (everysec)": 0, "SIGKILL (always)": 0}
    try:
        for n in range(2 * rounds):
            fsync = "everysec" if n % 2 == 0 else "always"
            client.config_set("appendfsync", fsync)
            assert client.config_get("appendfsync")["appendfsync"] == fsync
            assert client.config_get("appendonly")["appendonly"] == "yes"
            time.sleep(rng.uniform(1.0, 3.0))
            if fsync == "everysec":
                owned_redis.stop()  # SIGTERM: Redis shuts down cleanly, AOF flushed and fsynced
                kinds["clean restart (everysec)"] += 1
            else:
                owned_redis.proc.send_signal(signal.SIGKILL)
                owned_redis.proc.wait(30)
                owned_redis.stop()
                kinds["SIGKILL (always)"] += 1
            time.sleep(rng.uniform(0.5, 2.0))
            owned_redis.start()  # same port, same AOF
        time.sleep(1.0)
        stop.set()
        thread.join()
        wait_drained(client, s, ("hot", "cold"))
        stream_len = client.xlen(s.stream)
    finally:
        stop.set()
        codes = {"hot": hot.stop(), "cold": cold.stop()}
        client.close()
    assert codes == {"hot": 0, "cold": 0}, codes
    # Every entry Redis acknowledged is still in the stream (a chunk re-sent after a failure may add more).
    assert stream_len >= publisher.stats.entries, (stream_len, publisher.stats.entries)
    report = truth_check(s, publisher.sent_truth(day), tmp_path)
    record("Redis restart with AOF during ingest", report, publisher.stats.entries, 2 * rounds, "Redis restart (AOF)",
           retried_publish_chunks=publisher.stats.retried_chunks, **kinds)
    assert_truth(report)
