"""Lake replay: a day re-published into a separate stream and archived by a second
installation comes out identical (every column), paced by trade time."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from conftest import drop_test_state
from standins.broker_http import make_truth_day
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.core.wire import KST, TICK_SCHEMA, UTC
from tickvault.services.archiver import build_archiver
from tickvault.services.collectors.replay import in_time_order, parse_speed, replay
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 20)


@pytest.fixture
def original(settings) -> pa.Table:
    """A day in the lake as live collectors left it: mixed sources, received_at set."""
    truth = make_truth_day(DAY, ["005930", "000660", "035720"], 150)
    n = truth.num_rows
    sources = pa.array(["kis" if i % 3 else "kiwoom" for i in range(n)])
    received = pc.add(truth.column("ts"), pa.scalar(timedelta(milliseconds=40), pa.duration("us")))
    table = truth.set_column(TICK_SCHEMA.get_field_index("source"), "source", sources)
    table = table.set_column(TICK_SCHEMA.get_field_index("received_at"), "received_at", received.cast(TICK_SCHEMA.field("received_at").type))
    lake = Lake(settings)
    lake.init()
    assert lake.upsert(table) == n
    lake.close()
    return table


@pytest.fixture
def second_install(settings, tmp_path, test_id):
    """Another installation (own schema, lake) that archives the replay stream."""
    s = Settings(**{**settings.model_dump(), "stream": f"{settings.stream}:replay", "pg_schema": f"r_{test_id}", "lake_dir": tmp_path / "lake2"})
    yield s
    drop_test_state(s)


def sorted_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: (r["symbol"], r["cum_volume"]))


def test_speed_parsing():
    assert parse_speed("max") is None and parse_speed("10") == 10.0 and parse_speed("1") == 1.0
    for bad in ("0", "-1", "fast"):
        with pytest.raises(ValueError):
            parse_speed(bad)


def test_replay_archived_by_a_second_install_is_identical(settings, second_install, original, rclient):
    runner = CliRunner()
    env = {
        "TICKVAULT_REDIS_URL": settings.redis_dsn, "TICKVAULT_PG_URL": settings.pg_dsn, "TICKVAULT_STREAM": settings.stream,
        "TICKVAULT_LAKE_DIR": str(settings.lake_dir), "TICKVAULT_PG_SCHEMA": settings.pg_schema,
    }
    result = runner.invoke(cli, ["collect", "replay", "--date", DAY.isoformat(), "--speed", "max", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary == {"date": "2026-11-20", "stream": second_install.stream, "ticks": original.num_rows,
                       "published": original.num_rows, "speed": "max", "complete": True}
    assert rclient.xlen(settings.stream) == 0  # the live stream is untouched

    for group in ("hot", "cold"):
        build_archiver(second_install, group).run_until_idle()
    start, end = trading_day_bounds(DAY)
    hot, lake = HotStore(second_install), Lake(second_install)
    try:
        want = sorted_rows(original)
        assert sorted_rows(hot.read_ticks(start, end)) == want
        assert sorted_rows(lake.read_ticks(start, end)) == want
    finally:
        hot.close()
        lake.close()


def test_replay_into_the_live_stream_is_refused(settings, original):
    env = {"TICKVAULT_REDIS_URL": settings.redis_dsn, "TICKVAULT_STREAM": settings.stream, "TICKVAULT_LAKE_DIR": str(settings.lake_dir)}
    result = CliRunner().invoke(cli, ["collect", "replay", "--date", DAY.isoformat(), "--stream", settings.stream], env=env)
    assert result.exit_code != 0 and "live stream" in result.output
    result = CliRunner().invoke(cli, ["collect", "replay", "--date", "2026-11-21", "--speed", "max"], env=env)
    assert result.exit_code != 0 and "no ticks for 2026-11-21" in result.output


def test_symbols_filter_and_relabelled_source(settings, original, rclient):
    lake = Lake(settings)
    table = lake.read_ticks(*trading_day_bounds(DAY), ["000660"])
    lake.close()
    published = replay(table, Publisher(rclient, f"{settings.stream}:r"), speed=None, source="replay")
    entries = [f for _, f in rclient.xrange(f"{settings.stream}:r")]
    assert published == len(entries) == pc.sum(pc.equal(original.column("symbol"), "000660")).as_py()
    assert {e["symbol"] for e in entries} == {"000660"} and {e["source"] for e in entries} == {"replay"}
    cums = [int(e["cum_volume"]) for e in entries]
    assert cums == sorted(cums)  # one symbol in time order = cumulative-volume order


def test_pace_follows_trade_time(rclient, settings):
    base = datetime(2026, 11, 20, 9, 0, tzinfo=KST).astimezone(UTC)
    from decimal import Decimal

    rows = [("KRX", "005930", base + timedelta(seconds=s), Decimal(100), 1, c, None, "kis", None) for c, s in ((1, 0), (2, 0), (3, 1), (4, 3))]
    table = pa.table(list(zip(*rows)), schema=TICK_SCHEMA)
    stream = f"{settings.stream}:paced"
    started = time.monotonic()
    assert replay(table, Publisher(rclient, stream), speed=10.0) == 4
    elapsed = time.monotonic() - started
    assert 0.28 <= elapsed < 3.0  # 3 s of trading at 10x; generous upper bound for a busy machine
    assert [e["cum_volume"] for _, e in rclient.xrange(stream)] == ["1", "2", "3", "4"]
    assert in_time_order(table.take([3, 2, 1, 0])).column("cum_volume").to_pylist() == [1, 2, 3, 4]
