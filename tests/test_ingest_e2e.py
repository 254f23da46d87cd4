"""The ingest path end to end: the stream lands exactly once in both stores, whatever happens.

Everything here is real: Redis streams, PostgreSQL, DuckLake files, archiver processes.
The truth is the simulator's set of distinct ticks; the stores are read back through
`tickvault export`, the same path an operator uses.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import redis

from factories import DAY
from helpers import export, sort_key, subprocess_env
from tickvault.core.config import Settings
from tickvault.core.stream import FrameLimits, GroupConsumer, Publisher, connect_raw, group_info
from tickvault.core.wire import WireEncoder
from tickvault.dev.simulate import generate_day, publish
from tickvault.services.archiver import build_archiver


def archive_until_idle(s: Settings, *groups: str) -> None:
    threads = []
    for group in groups:
        archiver = build_archiver(s, group, consumer=f"test-{group}")
        threads.append(threading.Thread(target=archiver.run_until_idle, kwargs={"idle_reads": 3}))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def assert_stores_equal_truth(s: Settings, truth: pa.Table, tmp_path: Path) -> None:
    expected = sort_key(truth)
    for source in ("hot", "cold"):
        got = export(s, source, tmp_path / f"{source}.parquet")
        assert got.num_rows == expected.num_rows, f"{source}: {got.num_rows} rows, truth {expected.num_rows}"
        assert got.equals(expected), f"{source} differs from the truth"


def test_duplicated_shuffled_day_lands_exactly_once_in_both_stores(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    truth = generate_day(DAY, symbols=20, ticks=200_000, seed=7)
    sent = publish(Publisher(rclient, settings.stream), truth, dup_rate=0.01, shuffle_window=50, seed=7)
    assert sent.entries > truth.num_rows  # duplicates really were sent
    archive_until_idle(settings, "hot", "cold")
    assert_stores_equal_truth(settings, truth, tmp_path)
    groups = group_info(rclient, settings.stream)
    assert groups["hot"]["pending"] == 0 and groups["cold"]["pending"] == 0


def test_malformed_entries_are_dead_lettered_and_their_neighbours_stored(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    truth = generate_day(DAY, symbols=3, ticks=300, seed=3)
    encoder = WireEncoder(truth)
    good = [encoder.fields(i) for i in range(truth.num_rows)]
    template = good[0]
    bad = {
        "missing field": {k: v for k, v in template.items() if k != "price"},
        "malformed field": dict(template, extra="1"),
        "non-numeric price": dict(template, price="abc"),
        "volume <= 0": dict(template, volume="0"),
        "cum_volume < volume": dict(template, volume="10", cum_volume="5"),
        "unknown version": dict(template, v="9"),
        "unparseable time": dict(template, ts="2026-13-45T99:00:00+09:00"),
        "future time": dict(template, ts="2099-01-01T09:00:00+09:00"),
    }
    entries = good[:150] + list(bad.values()) + good[150:]
    ids = Publisher(rclient, settings.stream).publish_fields(entries)
    bad_ids = set(ids[150 : 150 + len(bad)])
    archive_until_idle(settings, "hot", "cold")
    letters = rclient.xrange(settings.dlq_stream)
    for stage in ("archive-hot", "archive-cold"):
        mine = [f for _, f in letters if f["stage"] == stage]
        assert {f["entry_id"] for f in mine} == bad_ids
        assert all(f["reason"] for f in mine)
    reasons = " | ".join(f["reason"] for _, f in letters)
    for expected in ("missing field(s): price", "unexpected field(s): extra", "not a decimal", "volume: must be > 0",
                     "cum_volume 5 < volume 10", "unknown wire version", "unparseable time", "in the future"):
        assert expected in reasons
    assert_stores_equal_truth(settings, truth, tmp_path)


def _start_archiver(s: Settings, which: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tickvault.cli", "archive", which, "--consumer", "kill-test"],
            env=subprocess_env(s), stdout=out, stderr=subprocess.STDOUT,
        )


def wait_drained(client: redis.Redis, s: Settings, groups: tuple[str, ...], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = group_info(client, s.stream)
        if all(g in info and info[g]["lag"] == 0 and info[g]["pending"] == 0 for g in groups):
            return
        time.sleep(0.2)
    raise AssertionError(f"stream not drained in {timeout}s: {group_info(client, s.stream)}")


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    truth = generate_day(DAY, symbols=10, ticks=60_000, seed=11)
    rng = random.Random(11)
    publisher = threading.Thread(
        target=publish, args=(Publisher(rclient, settings.stream), truth),
        kwargs={"dup_rate": 0.01, "shuffle_window": 50, "seed": 11, "chunk": 500},
    )
    log = tmp_path / "archiver.log"
    proc = _start_archiver(settings, "all", log)
    publisher.start()
    kills = 0
    for _ in range(12):
        time.sleep(rng.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        proc = _start_archiver(settings, "all", log)
    publisher.join()
    wait_drained(rclient, settings, ("hot", "cold"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    assert kills >= 10
    assert_stores_equal_truth(settings, truth, tmp_path)


def test_sigterm_finishes_the_batch_and_exits_zero(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    truth = generate_day(DAY, symbols=5, ticks=20_000, seed=5)
    publish(Publisher(rclient, settings.stream), truth)
    log = tmp_path / "a.log"
    proc = _start_archiver(settings, "all", log)
    deadline = time.monotonic() + 60  # both archivers working (on a loaded machine start-up takes a while)
    while log.read_text(errors="replace").count("started (stream") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")[-2000:]
    info = group_info(rclient, settings.stream)
    assert info["hot"]["pending"] == 0 and info["cold"]["pending"] == 0  # nothing left half-done


def test_hot_store_outage_is_retried_while_cold_keeps_going(owned_pg, settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    s = settings.model_copy(update={"pg_url": owned_pg.url, "retry_max_s": 2.0})
    truth = generate_day(DAY, symbols=5, ticks=40_000, seed=21)
    half = truth.num_rows // 2
    first, second = truth.slice(0, half), truth.slice(half)
    log = tmp_path / "archiver.log"
    proc = _start_archiver(s, "all", log)
    try:
        publish(Publisher(rclient, s.stream), first)
        wait_drained(rclient, s, ("hot", "cold"))
        owned_pg.stop()
        down_since = time.monotonic()
        publish(Publisher(rclient, s.stream), second)
        wait_drained(rclient, s, ("cold",))  # the lake is not held back by the hot outage
        info = group_info(rclient, s.stream)
        assert info["hot"]["lag"] + info["hot"]["pending"] > 0  # hot has not acked what it could not write
        time.sleep(max(0.0, 12 - (time.monotonic() - down_since)))  # several retries at retry_max_s 2 s
        owned_pg.start()
        wait_drained(rclient, s, ("hot", "cold"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = log.read_text()
    assert "retrying" in text and "nothing is acked until it succeeds" in text
    assert_stores_equal_truth(s, truth, tmp_path)


def test_poison_entries_never_stop_a_group(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 and a field name given twice are dead-lettered (bytes kept in base64);
    the entries after them land in both stores and nothing stays pending."""
    truth = generate_day(DAY, symbols=3, ticks=300, seed=4)
    encoder = WireEncoder(truth)
    publisher = Publisher(rclient, settings.stream)
    publisher.publish_fields(encoder.fields(i) for i in range(100))
    template = [part.encode() for kv in encoder.fields(0).items() for part in kv]
    poison = [
        [b"\xff" if part == b"symbol" else part for part in template],
        template + [b"note", b"\xc0\xaf"],
        template + [b"price", b"1"],
    ]
    poison_ids = {rclient.execute_command("XADD", settings.stream, "*", *parts) for parts in poison}
    publisher.publish_fields(encoder.fields(i) for i in range(100, truth.num_rows))
    archive_until_idle(settings, "hot", "cold")
    assert_stores_equal_truth(settings, truth, tmp_path)
    letters = [f for _, f in rclient.xrange(settings.dlq_stream)]
    for stage in ("archive-hot", "archive-cold"):
        assert {f["entry_id"] for f in letters if f["stage"] == stage} == poison_ids
    assert all(f["encoding"] == "base64" for f in letters)
    groups = group_info(rclient, settings.stream)
    assert groups["hot"]["pending"] == 0 and groups["cold"]["pending"] == 0


def test_a_running_archiver_claims_what_a_dead_consumer_left_pending(settings: Settings, rclient: redis.Redis) -> None:
    """A consumer that died under another name (a re-created container) holds pending entries; the
    archiver already running claims them after claim_idle_ms, not only when it starts."""
    s = settings.model_copy(update={"claim_idle_ms": 1000})
    truth = generate_day(DAY, symbols=2, ticks=40, seed=5)
    archiver = build_archiver(s, "hot", consumer="alive")
    archiver.store.init()
    archiver.consumer.ensure_group()
    worker = threading.Thread(target=archiver.run)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not group_info(rclient, s.stream)["hot"]["consumers"] and time.monotonic() < deadline:
            time.sleep(0.02)  # the archiver has read once (its start-up claim found nothing)
        dead = GroupConsumer(connect_raw(s.redis_dsn), s.stream, "hot", "hot-old-hostname")
        encoder = WireEncoder(truth)
        # the dead consumer takes the entries in a transaction, before the archiver's next read can
        pipe = rclient.pipeline(transaction=True)
        for i in range(truth.num_rows):
            pipe.xadd(s.stream, encoder.fields(i))
        pipe.xreadgroup("hot", dead.consumer, {s.stream: ">"}, count=truth.num_rows)
        pipe.execute()
        assert rclient.xpending(s.stream, "hot")["pending"] == truth.num_rows
        while time.monotonic() < deadline + 10 and archiver.store.count_ticks(DAY) < truth.num_rows:
            time.sleep(0.05)
        assert archiver.store.count_ticks(DAY) == truth.num_rows
        while time.monotonic() < deadline + 20 and rclient.xpending(s.stream, "hot")["pending"]:
            time.sleep(0.05)
        assert rclient.xpending(s.stream, "hot")["pending"] == 0
    finally:
        archiver.stop()
        worker.join(30)
        archiver.store.close()


def test_a_redis_pause_longer_than_the_socket_timeout_is_retried(settings: Settings, tmp_path: Path) -> None:
    """A Redis that stops answering (SIGSTOP, longer than redis_timeout_s) raises TimeoutError in the
    archiver's read: it is retried like a lost connection, and what was published after lands."""
    from tickvault.dev.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    s = settings.model_copy(update={"redis_url": url, "redis_timeout_s": 0.5})
    client = redis.Redis.from_url(url, decode_responses=True)
    truth = generate_day(DAY, symbols=2, ticks=200, seed=6)
    encoder = WireEncoder(truth)
    archiver = build_archiver(s, "hot", consumer="paused")
    worker = threading.Thread(target=archiver.run)
    try:
        archiver.store.init()
        Publisher(client, s.stream).publish_fields(encoder.fields(i) for i in range(100))
        worker.start()
        deadline = time.monotonic() + 30
        while archiver.store.count_ticks(DAY) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # three socket timeouts
        server.proc.send_signal(signal.SIGCONT)
        Publisher(client, s.stream).publish_fields(encoder.fields(i) for i in range(100, truth.num_rows))
        while archiver.store.count_ticks(DAY) < truth.num_rows and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.is_alive(), "the archiver exited on a Redis stall"
        assert archiver.store.count_ticks(DAY) == truth.num_rows
    finally:
        if server.proc is not None:
            server.proc.send_signal(signal.SIGCONT)
        archiver.stop()
        if worker.is_alive():
            worker.join(30)
        archiver.store.close()
        client.close()
        server.stop()


def test_v1_entries_and_v2_frames_mixed_in_one_stream_land_exactly_once(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    """Frames (with redelivered trades and one bad trade inside) between v1 entries: both stores hold
    the truth, the bad trade alone is dead-lettered naming its entry and row, nothing stays pending."""
    truth = generate_day(DAY, symbols=4, ticks=3000, seed=8)
    publisher = Publisher(rclient, settings.stream)
    encoder = WireEncoder(truth)
    publisher.publish_fields(encoder.fields(i) for i in range(1000))
    publisher.publish_table(truth.slice(900, 1100), frame_trades=300)  # 100 trades sent twice
    rows = truth.slice(2000, 3).to_pylist()
    rows[1] = dict(rows[1], volume=0)
    [bad_id] = publisher.publish_table(pa.Table.from_pylist(rows, schema=truth.schema))
    publisher.publish_fields(encoder.fields(i) for i in range(2000, truth.num_rows))
    sent = publish(Publisher(rclient, settings.stream), truth.slice(0, 500), frames=FrameLimits(max_trades=50))
    assert sent.entries == 500
    archive_until_idle(settings, "hot", "cold")
    assert_stores_equal_truth(settings, truth, tmp_path)
    letters = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert sorted(f["stage"] for f in letters) == ["archive-cold", "archive-hot"]
    assert {(f["entry_id"], f["index"]) for f in letters} == {(bad_id, "1")}
    assert "volume: must be > 0" in letters[0]["reason"]
    groups = group_info(rclient, settings.stream)
    assert groups["hot"]["pending"] == 0 and groups["cold"]["pending"] == 0


def test_batches_are_bounded_by_bytes_as_well_as_entries(settings: Settings, rclient: redis.Redis) -> None:
    """60 entries of 100 kB with a 1 MB bound: no batch holds more than one read beyond the bound,
    every entry is processed once (they are dead letters: the value kept once, the reason capped)."""
    from tickvault.services.archiver import Commit

    template = WireEncoder(generate_day(DAY, symbols=1, ticks=2, seed=1)).fields(0)
    Publisher(rclient, settings.stream).publish_fields(dict(template, source="x" * 100_000) for _ in range(60))
    archiver = build_archiver(settings.model_copy(update={"hot_batch_max_bytes": 1 << 20}), "hot", consumer="bytes")
    commits: list[Commit] = []
    archiver.observers.append(commits.append)
    archiver.run_until_idle()
    archiver.store.close()
    sizes = [c.entries for c in commits]
    assert sum(sizes) == 60 and sum(c.dead for c in commits) == 60
    assert max(sizes) <= 16 and max(sizes[1:]) <= 11, sizes  # first read: at most 16; then about 1 MB / 100 kB
    letters = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert len(letters) == 60 and all(len(f["reason"]) <= 400 and len(f["f.source"]) == 100_000 for f in letters)
