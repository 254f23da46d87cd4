"""Rebuilding a lagging store from the other one, on real Redis, PostgreSQL and DuckLake:
after the stream was lost, and after a backlog the stream should not keep."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import redis
from click.testing import CliRunner

from factories import DAY
from helpers import settings_env
from tickvault.cli import cli
from tickvault.core.calendar import previous_trading_day, trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.core.wire import KST
from tickvault.dev.simulate import generate_day, publish
from tickvault.services.archiver import build_archiver
from tickvault.services.sync import verify
from tickvault.services.sync.rebuild import RebuildError, rebuild
from tickvault.services.sync.trim import group_positions, trim
from tickvault.stores.lake import Lake


class Archivers:
    """The two archivers of one test, opened once (opening a lake costs about a second)."""

    def __init__(self, settings: Settings) -> None:
        self.by_group = {g: build_archiver(settings, g, consumer=f"{g}-1") for g in ("hot", "cold")}

    def drain(self, which: str) -> None:
        self.by_group[which].run_until_idle()

    def close(self) -> None:
        for archiver in self.by_group.values():
            archiver.store.close()


@pytest.fixture
def archivers(settings: Settings):
    opened = Archivers(settings)
    yield opened
    opened.close()


def test_stream_lost_while_hot_is_down_rebuild_hot_from_cold(settings: Settings, rclient: redis.Redis, archivers: Archivers) -> None:
    truth = generate_day(DAY, symbols=3, ticks=4000, seed=31)
    publisher = Publisher(rclient, settings.stream)
    publish(publisher, truth.slice(0, 1000))
    archivers.drain("hot")
    archivers.drain("cold")
    # hot goes down; the day goes on and the lake keeps up
    publish(publisher, truth.slice(1000, 2500))  # rows 1000..3499
    archivers.drain("cold")
    assert not verify(settings, DAY).consistent
    # Redis restarts without persistence: the stream and both groups are gone
    rclient.delete(settings.stream)

    start = trading_day_bounds(DAY)[0].isoformat()
    out = CliRunner().invoke(cli, ["rebuild", "hot", "--from", start, "--json"], env=settings_env(settings))
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["stream_existed"] is False and result["ticks_added"] == 2500
    assert group_positions(rclient, settings.stream) == {"hot": "0-1"}

    out = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat()], env=settings_env(settings))
    assert out.exit_code == 0, out.output

    # the pipeline resumes: later ticks reach both stores through the recreated stream
    publish(publisher, truth.slice(3500))
    archivers.drain("hot")
    archivers.drain("cold")
    report = verify(settings, DAY)
    assert report.consistent, report.reasons()
    assert report.stores["hot"].ticks == report.stores["cold"].ticks == truth.num_rows


def test_rebuild_after_a_backlog_moves_the_group_forward(settings: Settings, rclient: redis.Redis, archivers: Archivers) -> None:
    truth = generate_day(DAY, symbols=2, ticks=3000, seed=32)
    publisher = Publisher(rclient, settings.stream)
    publish(publisher, truth.slice(0, 500))
    archivers.drain("hot")
    archivers.drain("cold")
    publish(publisher, truth.slice(500, 1500))  # rows 500..1999
    archivers.drain("cold")
    # a hot consumer had taken some entries before dying
    rclient.xreadgroup("hot", "hot-1", {settings.stream: ">"}, count=100)
    last = rclient.xinfo_stream(settings.stream)["last-generated-id"]

    result = rebuild(settings, "hot", trading_day_bounds(DAY)[0], wait_s=5)
    assert result.stream_existed and result.group_position == last
    assert result.acked_pending == 100 and result.added == 1500
    assert group_positions(rclient, settings.stream)["hot"].split("-")[0] >= last.split("-")[0]
    assert verify(settings, DAY).consistent
    # nothing holds the stream back any more
    assert trim(settings, client=rclient).entries_after == 0

    # re-running is harmless, and new ticks flow to both
    assert rebuild(settings, "hot", trading_day_bounds(DAY)[0], wait_s=5).added == 0
    publish(publisher, truth.slice(2000))
    archivers.drain("hot")
    archivers.drain("cold")
    report = verify(settings, DAY)
    assert report.consistent, report.reasons()
    assert report.stores["hot"].ticks == truth.num_rows


def test_rebuild_refuses_while_the_source_lags(settings: Settings, rclient: redis.Redis) -> None:
    truth = generate_day(DAY, symbols=2, ticks=600, seed=33)
    publisher = Publisher(rclient, settings.stream)
    publish(publisher, truth)
    rclient.xgroup_create(settings.stream, "cold", id="0")
    before = group_positions(rclient, settings.stream)
    with pytest.raises(RebuildError, match="archive cold"):
        rebuild(settings, "hot", trading_day_bounds(DAY)[0], wait_s=0.3)
    assert group_positions(rclient, settings.stream) == before  # nothing moved
    with pytest.raises(ValueError, match="offset"):
        rebuild(settings, "hot", trading_day_bounds(DAY)[0].replace(tzinfo=None))
    out = CliRunner().invoke(cli, ["rebuild", "hot", "--from", "yesterday"], env=settings_env(settings))
    assert out.exit_code != 0 and "ISO-8601" in out.output


def test_rebuild_a_new_lake_creates_its_group_at_the_end(settings: Settings, rclient: redis.Redis, archivers: Archivers) -> None:
    """A lake lost (or new): the cold group does not exist; rebuild cold copies from hot and
    creates the group after everything hot already stored, so the trim can proceed."""
    truth = generate_day(DAY, symbols=2, ticks=1200, seed=34)
    publisher = Publisher(rclient, settings.stream)
    publish(publisher, truth)
    archivers.drain("hot")
    assert trim(settings, client=rclient).trimmed == 0  # no cold group: nothing may go
    archivers.by_group["cold"].store.init()  # `tickvault init --no-hot`: rebuild never creates a lake itself
    result = rebuild(settings, "cold", trading_day_bounds(DAY)[0], wait_s=5)
    assert result.added == truth.num_rows and result.acked_pending == 0
    assert result.group_position == rclient.xinfo_stream(settings.stream)["last-generated-id"]
    assert verify(settings, DAY).consistent
    assert trim(settings, client=rclient).entries_after == 0


def test_rebuild_cold_after_hot_retention_replays_what_hot_no_longer_holds(settings: Settings, rclient: redis.Redis,
                                                                           archivers: Archivers) -> None:
    """Issue 13.5: the cold archiver was down while hot's retention dropped an old day. The copy
    from hot cannot carry that day; rebuild replays it from the stream (which trim kept for
    the cold group) before it moves the group, so no tick ends up in neither store."""
    today = datetime.now(KST).date()
    recent = previous_trading_day(today)
    old = previous_trading_day(today - timedelta(days=7))
    old_truth = generate_day(old, symbols=2, ticks=600, seed=35)
    recent_truth = generate_day(recent, symbols=2, ticks=600, seed=36)
    publisher = Publisher(rclient, settings.stream)
    rclient.xgroup_create(settings.stream, "cold", id="0", mkstream=True)  # the cold archiver ran once, then died
    publish(publisher, old_truth)
    publish(publisher, recent_truth)
    archivers.drain("hot")
    archivers.by_group["cold"].store.init()
    # a shorter retention: the old day's partition goes, the recent day stays
    short = settings.model_copy(update={"tick_retention_days": (today - old).days - 2})
    dropped = archivers.by_group["hot"].store.__class__(short)
    assert f"ticks_p{old:%Y%m%d}" in dropped.maintain()["dropped_partitions"]
    dropped.close()
    assert trim(short, client=rclient).trimmed == 0  # the cold group still holds every entry

    result = rebuild(short, "cold", trading_day_bounds(old)[0], wait_s=5)
    with Lake(settings) as lake:
        for day, truth in ((old, old_truth), (recent, recent_truth)):
            assert lake.count_ticks(day) == truth.num_rows, day
    assert result.read == recent_truth.num_rows  # all the copy can vouch for
    assert result.replay_added == old_truth.num_rows  # the rest came from the stream
    assert trim(short, client=rclient).entries_after == 0
    assert verify(short, recent).consistent
    # a second run finds nothing left to replay
    assert rebuild(short, "cold", trading_day_bounds(old)[0], wait_s=5).replayed_entries == 0
