"""Safe stream trimming on a real Redis: never below any group's oldest unacknowledged entry,
nothing when a group is missing, an alarm (not a trim) over the ceiling, and a stopped hot
archiver that catches up with nothing lost after trims ran while ticks flowed."""

from __future__ import annotations

import json
import os
import threading

import pytest
import redis
from click.testing import CliRunner

from factories import DAY
from helpers import settings_env
from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher, group_info
from tickvault.dev.simulate import generate_day, publish
from tickvault.services.archiver import build_archiver
from tickvault.services.sync import state, verify
from tickvault.services.sync.trim import group_positions, next_id, parse_id, trim

FIELDS = {"v": "1", "symbol": "005930", "ts": "2026-11-20T09:00:00+09:00", "price": "100", "volume": "1", "cum_volume": "1", "source": "sim"}


def fill(client: redis.Redis, stream: str, n: int) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.xadd(stream, FIELDS)
    return pipe.execute()


def consume(client: redis.Redis, stream: str, group: str, count: int, ack: int) -> list[str]:
    """Deliver ``count`` new entries to ``group`` and ack the first ``ack`` of them."""
    reply = client.xreadgroup(group, f"{group}-test", {stream: ">"}, count=count)
    ids = [entry_id for entry_id, _ in reply[0][1]] if reply else []
    if ack:
        client.xack(stream, group, *ids[:ack])
    return ids


def groups(client: redis.Redis, stream: str, *names: str) -> None:
    for name in names:
        client.xgroup_create(stream, name, id="0", mkstream=True)


def first_id(client: redis.Redis, stream: str) -> str | None:
    entries = client.xrange(stream, count=1)
    return entries[0][0] if entries else None


def test_trim_keeps_the_oldest_pending_entry_of_the_slowest_group(settings: Settings, rclient: redis.Redis) -> None:
    ids = fill(rclient, settings.stream, 100)
    groups(rclient, settings.stream, "hot", "cold")
    consume(rclient, settings.stream, "cold", 100, ack=100)
    consume(rclient, settings.stream, "hot", 60, ack=40)  # 20 delivered but not acked

    dry = trim(settings, dry_run=True, client=rclient)
    assert dry.trimmed == 40 and rclient.xlen(settings.stream) == 100

    result = trim(settings, client=rclient)
    assert result.safe_min_id == ids[40] and result.held_by == "hot"
    assert result.trimmed == 40
    assert first_id(rclient, settings.stream) == ids[40]
    assert result.positions == {"hot": ids[40], "cold": next_id(ids[99])}
    # the pending entries are all still there for the hot consumer to re-read
    pending = rclient.xreadgroup("hot", "hot-test", {settings.stream: "0"}, count=100)[0][1]
    assert [i for i, f in pending] == ids[40:60] and all(f for _, f in pending)

    # trimming again changes nothing; once hot acks everything, all goes
    assert trim(settings, client=rclient).trimmed == 0
    rclient.xack(settings.stream, "hot", *ids[40:60])
    consume(rclient, settings.stream, "hot", 100, ack=100)
    assert trim(settings, client=rclient).trimmed == 60
    assert rclient.xlen(settings.stream) == 0


def test_no_trim_while_a_required_group_does_not_exist(settings: Settings, rclient: redis.Redis) -> None:
    fill(rclient, settings.stream, 50)
    groups(rclient, settings.stream, "cold")
    consume(rclient, settings.stream, "cold", 50, ack=50)
    result = trim(settings, client=rclient)
    assert result.trimmed == 0 and rclient.xlen(settings.stream) == 50
    assert "hot" in result.reason and "tickvault archive hot" in result.reason


def test_group_that_read_nothing_holds_everything(settings: Settings, rclient: redis.Redis) -> None:
    ids = fill(rclient, settings.stream, 30)
    groups(rclient, settings.stream, "hot", "cold")
    consume(rclient, settings.stream, "cold", 30, ack=30)
    result = trim(settings, client=rclient)
    assert result.trimmed == 0 and result.positions["hot"] == "0-1"
    assert first_id(rclient, settings.stream) == ids[0]


def test_ceiling_raises_an_alarm_instead_of_trimming(settings: Settings, rclient: redis.Redis) -> None:
    small = settings.model_copy(update={"stream_max_entries": 1000})
    ids = fill(rclient, small.stream, 1500)
    groups(rclient, small.stream, "hot", "cold")
    consume(rclient, small.stream, "cold", 1500, ack=1500)
    consume(rclient, small.stream, "hot", 200, ack=200)
    result = trim(small, client=rclient)
    assert result.trimmed == 200 and rclient.xlen(small.stream) == 1300
    assert result.alarm and "hot" in result.alarm and "rebuild hot" in result.alarm
    assert state.snapshot()["stream_ceiling_alarm"] == 1.0
    assert first_id(rclient, small.stream) == ids[200]

    env = settings_env(small) | {"TICKVAULT_STREAM_MAX_ENTRIES": "1000"}
    out = CliRunner().invoke(cli, ["trim", "--json"], env=env)
    assert out.exit_code == 2 and "ceiling" in out.stderr
    assert json.loads(out.stdout)["held_by"] == "hot"

    consume(rclient, small.stream, "hot", 1300, ack=1300)
    assert trim(small, client=rclient).alarm is None
    assert state.snapshot()["stream_ceiling_alarm"] == 0.0


def test_ids() -> None:
    assert next_id("5-3") == "5-4"
    assert next_id(f"5-{2**64 - 1}") == "6-0"
    assert parse_id("12-0") < parse_id("12-1") < parse_id("13-0")


def test_stopped_hot_archiver_is_never_trimmed_past_and_catches_up(settings: Settings, rclient: redis.Redis) -> None:
    """Ticks flow and the cold archiver keeps up while the hot archiver is down; trims run all
    along. The stream never loses an entry hot has not acked, and the restarted hot archiver
    catches up: both stores end up equal and continuous. Small by default; the acceptance size
    is TICKVAULT_TEST_TRIM_TICKS=300000."""
    total = int(os.environ.get("TICKVAULT_TEST_TRIM_TICKS", "6000"))  # acceptance run: 300000
    part_size = total // 4
    truth = generate_day(DAY, symbols=4 if total <= 10_000 else 40, ticks=total, seed=21)
    first, rest = truth.slice(0, part_size), truth.slice(part_size)
    publisher = Publisher(rclient, settings.stream)

    hot = build_archiver(settings, "hot", consumer="hot-1")
    cold = build_archiver(settings, "cold", consumer="cold-1")
    publish(publisher, first)
    hot.run_until_idle()  # hot is up for the first part of the day, then goes down
    hot.store.close()
    crashed: list[str] = []

    cold.consumer.ensure_group()
    cold_thread = threading.Thread(target=cold.run)
    cold_thread.start()
    try:
        for part in range(0, rest.num_rows, part_size):
            publish(publisher, rest.slice(part, part_size))
            if part == 0:  # a hot consumer that crashed with entries delivered but never written
                reply = rclient.xreadgroup("hot", "hot-1", {settings.stream: ">"}, count=300)
                crashed = [i for i, _ in reply[0][1]]  # delivered to hot-1, never acked
            result = trim(settings, client=rclient)
            position = group_positions(rclient, settings.stream)["hot"]
            assert result.safe_min_id is not None and parse_id(result.safe_min_id) <= parse_id(position)
            oldest = first_id(rclient, settings.stream)
            assert oldest is not None and parse_id(oldest) <= parse_id(position)
            assert parse_id(oldest) <= parse_id(crashed[0])  # the crashed batch is never trimmed
        for _ in range(12_000):  # let the cold archiver drain the stream (up to 10 min)
            info = group_info(rclient, settings.stream)["cold"]
            if info["lag"] == 0 and info["pending"] == 0:
                break
            threading.Event().wait(0.05)
    finally:
        cold.stop()
        cold_thread.join(30)
        cold.store.close()
    result = trim(settings, client=rclient)
    assert result.held_by == "hot" and result.safe_min_id == crashed[0] == first_id(rclient, settings.stream)
    assert rclient.xlen(settings.stream) == rest.num_rows  # the first part was trimmed (acked by both)

    restarted = build_archiver(settings, "hot", consumer="hot-1")
    restarted.run_until_idle()
    restarted.store.close()
    trim(settings, client=rclient)
    assert rclient.xlen(settings.stream) == 0
    report = verify(settings, DAY)
    assert report.consistent, report.reasons()
    assert report.stores["hot"].ticks == report.stores["cold"].ticks == truth.num_rows


@pytest.fixture(autouse=True)
def _reset_alarm() -> None:
    state.record_trim(0, 0, None)
