"""The stream sharded over a real Redis Cluster (3 masters of Debian's redis-server, each with a
replica): a two-venue day through both groups equals the truth, also across a master failover."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from factories import DAY
from helpers import export, settings_env, sort_key, subprocess_env, wait_until
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.sharding import ShardedPublisher, publisher_for, shard_key, shard_of, shard_streams, stream_client
from tickvault.core.stream import Publisher, group_info
from tickvault.dev.simulate import generate_day, publish
from tickvault.ops.metrics import PipelineMetrics
from tickvault.ops.run import group_archivers, stream_trim
from tickvault.ops.status import redis_status
from tickvault.services.sync.verify import verify
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[object]:
    from scaleout import RedisClusterServers, running

    servers = RedisClusterServers(tmp_path / "cluster")
    with running("a Redis Cluster", servers):
        yield servers


def two_venue_day() -> pa.Table:
    """One simulated day of both venues (generate_day gives its NXT-eligible symbols an NXT series too)."""
    day = generate_day(DAY, symbols=10, ticks=14_000, seed=4)
    assert set(pc.unique(day.column("venue")).to_pylist()) == {"KRX", "NXT"}
    return day


def test_shard_keys_are_hash_tagged_and_one_shard_is_the_plain_stream(settings: Settings) -> None:
    assert shard_key("tickvault:ticks", 7, 8) == "tickvault:ticks:{07}"
    assert shard_key("tickvault:ticks", 0, 1) == "tickvault:ticks"
    assert shard_of("KRX", "005930", 8) == 5  # crc32("KRX:005930") % 8: the same on every host and run
    assert {shard_of("KRX", f"{n:06d}", 8) for n in range(200)} == set(range(8))  # every shard is used
    assert isinstance(publisher_for(settings), Publisher)  # the default: one stream, plain Redis
    assert shard_streams(settings) == [settings.stream]


def start_archiver(s: Settings, consumer: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tickvault.cli", "archive", "all", "--no-sync", "--consumer", consumer],
                                env=subprocess_env(s, TICKVAULT_CLAIM_IDLE_MS="2000", TICKVAULT_RETRY_MAX_S="2"), stdout=out, stderr=subprocess.STDOUT)


def test_sharded_day_through_both_groups_survives_a_master_failover(cluster, settings: Settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"redis_url": cluster.url, "redis_cluster": True, "stream_shards": 8})  # type: ignore[attr-defined]
    truth = two_venue_day()
    for store in (HotStore(s), Lake(s)):
        store.init()
        store.close()
    client = stream_client(s)
    logs = [tmp_path / f"archiver-{name}.log" for name in ("a", "b")]
    procs = [start_archiver(s, name, log) for name, log in zip(("a", "b"), logs)]
    try:
        def reading() -> bool:
            return all(log.exists() and log.read_text(errors="replace").count("started (stream") == 16 for log in logs)

        wait_until("both archivers reading all 8 shards of both groups", reading)
        failures: list[BaseException] = []

        def publish_day() -> None:
            try:
                publish(ShardedPublisher(client, s), truth, dup_rate=0.01, shuffle_window=50, seed=4, chunk=500)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        publisher = threading.Thread(target=publish_day)
        publisher.start()
        wait_until("a quarter of the day published", lambda: sum(client.xlen(key) for key in shard_streams(s)) > truth.num_rows // 4)
        for key in shard_streams(s):  # each (venue, symbol) lives in its own shard only
            assert {shard_of(f["venue"], f["symbol"], 8) for _, f in client.xrange(key, count=500)} <= {int(key[-3:-1])}
        # the node the settings name loses its master role: the hardest case (every client's default node dies)
        named = int(cluster.url.rsplit(":", 1)[1])
        first = next((key for key in shard_streams(s) if cluster.master_of(key) == named), max(shard_streams(s), key=client.xlen))
        victim = cluster.master_of(first)
        cluster.kill(victim)  # mid-ingest: its replica takes over the slots
        publisher.join()
        assert not failures, failures
        wait_until("the failover", lambda: cluster.master_of(first) != victim)

        def drained() -> bool:
            for key in shard_streams(s):
                info = group_info(client, key)
                if not all(g in info and info[g]["lag"] == 0 and info[g]["pending"] == 0 for g in ("hot", "cold")):
                    return False
            return True

        try:
            wait_until("every shard drained by both groups", drained)
        except AssertionError:
            state = {key: {g: {k: i.get(k) for k in ("lag", "pending", "last-delivered-id", "entries-read")} for g, i in group_info(client, key).items()}
                     for key in shard_streams(s)}
            raise AssertionError(f"not drained: {state}") from None
        s = s.model_copy(update={"redis_url": cluster.alive_url()})  # new clients need a node that is up
        status = redis_status(s)  # summed over the shards, each shard's own figures beside
        assert status["state"] == "ok" and len(status["shards"]) == 8
        assert status["length"] == sum(client.xlen(key) for key in shard_streams(s)) >= truth.num_rows
        assert all(status["groups"][g]["lag"] == 0 and status["groups"][g]["pending"] == 0 for g in ("hot", "cold"))
        trimmed = stream_trim(s)(datetime.now(UTC))  # every shard, below what both groups acknowledged
        assert trimmed["trimmed"] == status["length"] and trimmed["alarm"] == 0.0
        assert all(client.xlen(key) == 0 for key in shard_streams(s))
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, log in zip(procs, logs):
            assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    client.close()
    expected = sort_key(truth)
    assert set(pc.unique(expected.column("venue")).to_pylist()) == {"KRX", "NXT"}
    for source in ("hot", "cold"):
        got = export(s, source, tmp_path / f"{source}.parquet")
        assert got.num_rows == expected.num_rows, f"{source}: {got.num_rows} rows, truth {expected.num_rows}"
        assert got.equals(expected), f"{source} differs from the truth"
    report = verify(s, DAY)
    assert report.consistent, report.reasons()


def test_rebuild_cold_moves_the_cold_group_on_every_shard_and_metrics_sum_the_shards(cluster, settings: Settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"redis_url": cluster.url, "redis_cluster": True, "stream_shards": 8})  # type: ignore[attr-defined]
    truth = generate_day(DAY, symbols=10, ticks=3000, seed=6)
    for store in (HotStore(s), Lake(s)):
        store.init()
        store.close()
    client = stream_client(s)
    shards = shard_streams(s)
    for key in shards:  # the cold archivers ran once and stopped: their groups wait at the start
        client.xgroup_create(key, "cold", id="0", mkstream=True)
    publish(ShardedPublisher(client, s), truth, dup_rate=0.01, seed=6)
    drain(group_archivers(s, "hot", "hot-1"))

    metrics = PipelineMetrics(s)
    metrics.sample(client)
    lengths = [client.xlen(key) for key in shards]
    assert sum(1 for n in lengths if n) > 1  # the day is spread over the shards
    assert metrics.value("tickvault_stream_entries") == sum(lengths) > 0
    assert metrics.value("tickvault_consumer_lag", group="hot") == 0 == metrics.value("tickvault_consumer_pending", group="hot")
    assert metrics.value("tickvault_consumer_lag", group="cold") == sum(lengths)  # cold has read nothing on any shard

    rebuild = ["rebuild", "cold", "--from", trading_day_bounds(DAY)[0].isoformat(), "--wait", "30"]
    out = CliRunner().invoke(cli, [*rebuild, "--json"], env=settings_env(s))
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["ticks_added"] == truth.num_rows and result["stream_existed"] is True and result["group_position"] is None
    assert result["shards"] == {key: client.xinfo_stream(key)["last-generated-id"] for key in shards}
    for key in shards:
        assert group_info(client, key)["cold"]["lag"] == 0 == group_info(client, key)["cold"]["pending"]
    again = CliRunner().invoke(cli, rebuild, env=settings_env(s))  # safe to repeat; one line per shard
    assert again.exit_code == 0 and ", 0 added;" in again.output and all(f"  {key}  " in again.output for key in shards), again.output

    commits: list[object] = []
    drain(group_archivers(s, "cold", "cold-1"), commits.append)
    assert commits == []  # `archive cold` finds nothing left on any shard

    trimmed = CliRunner().invoke(cli, ["trim", "--json"], env=settings_env(s))  # every shard, both groups done
    assert trimmed.exit_code == 0, trimmed.output
    per_shard = json.loads(trimmed.stdout)["shards"]
    assert [r["stream"] for r in per_shard] == shards and sum(r["trimmed"] for r in per_shard) == sum(lengths)
    assert all(client.xlen(key) == 0 for key in shards)
    client.close()
    expected = sort_key(truth)
    for source in ("hot", "cold"):
        assert export(s, source, tmp_path / f"{source}.parquet").equals(expected), f"{source} differs from the truth"
    report = verify(s, DAY)
    assert report.consistent, report.reasons()


def drain(archivers: list, observer=None) -> None:
    """Run a group's shard archivers until each finds its shard empty, then close them."""
    try:
        for archiver in archivers:
            if observer is not None:
                archiver.observers.append(observer)
            archiver.run_until_idle()
    finally:
        archivers[0].store.close()
        for archiver in archivers:
            archiver.consumer.client.close()
