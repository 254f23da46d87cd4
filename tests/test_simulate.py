"""The simulator: KRX realism, determinism, wire disorder, and a lossless trip through real Redis."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis
from click.testing import CliRunner

from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.core.wire import KST, NATURAL_KEY, TICK_SCHEMA, decode_entries, dedupe
from tickvault.dev.simulate import generate_day, plan_day, price_limits, publish, snap_to_grid, tick_size, wire_order

DAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def day_table() -> pa.Table:
    return generate_day(DAY, symbols=12, ticks=30_000, seed=5)


def _kst_seconds(table: pa.Table) -> np.ndarray:
    start = int(datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=KST).timestamp())
    return table.column("ts").cast(pa.int64()).to_numpy() // 1_000_000 - start


def test_tick_grid_and_limits() -> None:
    prices = np.array([1, 1999, 2000, 4995, 5000, 19990, 20000, 49950, 50000, 199900, 200000, 499500, 500000, 1_234_000])
    assert tick_size(prices).tolist() == [1, 1, 5, 5, 10, 10, 50, 50, 100, 100, 500, 500, 1000, 1000]
    assert snap_to_grid(np.array([2003.0, 4998.0, 61_234.0])).tolist() == [2005, 5000, 61_200]
    down, up = price_limits(np.array([10_000, 61_200]))
    assert down.tolist() == [7_000, 42_850] and up.tolist() == [13_000, 79_500]


def test_deterministic_by_seed(day_table: pa.Table) -> None:
    assert generate_day(DAY, symbols=12, ticks=30_000, seed=5).equals(day_table)
    assert not generate_day(DAY, symbols=12, ticks=30_000, seed=6).equals(day_table)


def test_shape_of_the_day(day_table: pa.Table) -> None:
    assert day_table.schema == TICK_SCHEMA
    assert day_table.num_rows == 30_000
    assert dedupe(day_table).num_rows == day_table.num_rows  # natural key unique
    symbols = day_table.column("symbol").to_pylist()
    assert len(set(symbols)) == 12 and all(len(s) == 6 and s.isdigit() for s in symbols)
    assert set(day_table.column("source").to_pylist()) == {"sim"}
    assert set(day_table.column("side").to_pylist()) == {"B", "S", None}

    secs = _kst_seconds(day_table)
    continuous = secs < 6 * 3600 + 20 * 60
    closing = secs == 6 * 3600 + 30 * 60
    assert secs.min() == 0 and np.all(continuous | closing)  # 09:00–15:20, then the 15:30 print only
    assert closing.sum() == 12  # one closing-auction print per symbol
    per_half_hour = np.bincount(secs[continuous] // 1800)
    assert per_half_hour[0] > 1.5 * np.median(per_half_hour)  # heavier open
    assert per_half_hour[-1] > np.median(per_half_hour)  # and a busier close
    received = day_table.column("received_at").cast(pa.int64()).to_numpy()
    assert np.all(received >= day_table.column("ts").cast(pa.int64()).to_numpy())


def test_prices_on_grid_inside_limits_and_cum_volume_consistent(day_table: pa.Table) -> None:
    plan = plan_day(12, 30_000, 5)
    limits = {s: (lo, hi) for s, lo, hi in zip(plan.symbols, plan.limit_down, plan.limit_up)}
    df = day_table.to_pandas()
    df["price_i"] = df["price"].astype(float).round().astype(np.int64)
    assert (df["price"].astype(float) == df["price_i"]).all()
    assert (df["price_i"] % tick_size(df["price_i"].to_numpy()) == 0).all()
    for symbol, rows in df.groupby("symbol", sort=False):
        lo, hi = limits[symbol]
        prev = plan.prev_close[plan.symbols.index(symbol)]
        assert rows["price_i"].between(lo, hi).all() and lo >= 0.7 * prev and hi <= 1.3 * prev
        rows = rows.sort_values("cum_volume")
        assert rows["ts"].is_monotonic_increasing
        assert (rows["volume"] > 0).all()
        assert rows["cum_volume"].iloc[0] == rows["volume"].iloc[0]
        assert (rows["cum_volume"].diff().iloc[1:] == rows["volume"].iloc[1:]).all()
        assert rows["side"].iloc[[0, -1]].isna().all()  # auction prints have no aggressor


def test_session_times_follow_the_calendar() -> None:
    late = generate_day(date(2026, 1, 2), symbols=2, ticks=400, seed=1)  # first trading day of 2026: 10:00 open
    kst = [t.astimezone(KST) for t in late.column("ts").to_pylist()]
    assert min(kst).time().isoformat() == "10:00:00" and max(kst).time().isoformat() == "15:30:00"
    assert all(t.time().isoformat() < "15:20:00" or t.time().isoformat() == "15:30:00" for t in kst)
    weekend = generate_day(date(2026, 11, 21), symbols=2, ticks=400, seed=1)  # a Saturday: regular hours
    kst = [t.astimezone(KST) for t in weekend.column("ts").to_pylist()]
    assert min(kst).time().isoformat() == "09:00:00" and max(kst).time().isoformat() == "15:30:00"


def test_wire_order_duplicates_and_bounded_shuffle() -> None:
    order = wire_order(10_000, dup_rate=0.01, shuffle_window=50, seed=3)
    counts = Counter(order.tolist())
    assert len(order) == 10_100 and len(counts) == 10_000 and max(counts.values()) == 2
    plain = wire_order(10_000, shuffle_window=50, seed=3)
    assert sorted(plain.tolist()) == list(range(10_000))
    assert np.abs(plain - np.arange(10_000)).max() < 50
    assert not np.array_equal(plain, np.arange(10_000))


def test_publish_round_trips_through_redis(settings: Settings, rclient: redis.Redis) -> None:
    table = generate_day(DAY, symbols=5, ticks=4_000, seed=9)
    result = publish(Publisher(rclient, settings.stream), table, dup_rate=0.02, shuffle_window=20, seed=9)
    assert result.entries == 4_080 and rclient.xlen(settings.stream) == 4_080
    entries = rclient.xrange(settings.stream)
    decoded = decode_entries(entries)
    assert decoded.dead == []
    got = dedupe(decoded.table).sort_by([(k, "ascending") for k in NATURAL_KEY])
    want = table.sort_by([(k, "ascending") for k in NATURAL_KEY])
    assert got.equals(want)  # every column, exactly (prices as decimals, times to the microsecond)


def test_realtime_pace_spaces_entries_by_exchange_time(settings: Settings, rclient: redis.Redis) -> None:
    table = generate_day(DAY, symbols=2, ticks=40, seed=1)
    waits: list[float] = []
    publish(Publisher(rclient, settings.stream), table, pace="realtime", sleep=waits.append)
    secs = _kst_seconds(table)
    assert rclient.xlen(settings.stream) == 40
    # the fake sleep does not advance the clock, so each wait is the offset of its exchange second
    assert len(waits) == len(np.unique(secs)) - 1
    assert waits == sorted(waits)
    assert waits[-1] == pytest.approx(float(secs.max() - secs.min()), abs=1.0)


def test_cli_publishes_and_writes_truth(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    truth = tmp_path / "truth.parquet"
    env = {"TICKVAULT_REDIS_URL": settings.redis_dsn, "TICKVAULT_STREAM": settings.stream}
    args = ["simulate", "--date", "2026-11-20", "--symbols", "3", "--ticks", "2000", "--seed", "4", "--dup-rate", "0.05", "--truth", str(truth)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "published 2100 entries (2000 distinct" in result.output
    stored = pq.read_table(truth)
    assert stored.num_rows == 2000 and stored.schema.names == TICK_SCHEMA.names
    assert stored.equals(generate_day(DAY, symbols=3, ticks=2000, seed=4).sort_by([(k, "ascending") for k in NATURAL_KEY]))
    assert rclient.xlen(settings.stream) == 2100
    assert pc.count_distinct(stored.column("symbol")).as_py() == 3


def test_cli_rejects_bad_input() -> None:
    runner = CliRunner()
    bad_date = runner.invoke(cli, ["simulate", "--date", "2026.11.20", "--no-publish"])  # 20261120 is a date now
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    too_few = runner.invoke(cli, ["simulate", "--symbols", "10", "--ticks", "5", "--no-publish"])
    assert too_few.exit_code == 2 and "at least 2 per symbol" in too_few.output


def test_cli_json_summary_and_unreachable_redis(settings: Settings, rclient: redis.Redis) -> None:
    env = {"TICKVAULT_REDIS_URL": settings.redis_dsn, "TICKVAULT_STREAM": settings.stream}
    ok = CliRunner().invoke(cli, ["simulate", "--date", "2026-11-20", "--symbols", "2", "--ticks", "300", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.stdout)
    assert summary["entries"] == summary["ticks"] == 300 and summary["symbols"] == 2
    assert summary["first_ts"] == "2026-11-20T09:00:00+09:00" and summary["last_ts"] == "2026-11-20T15:30:00+09:00"
    down = CliRunner().invoke(cli, ["simulate", "--ticks", "10", "--symbols", "1"], env={"TICKVAULT_REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"})
    assert down.exit_code == 1 and "unreachable" in down.stderr and "s3cret" not in down.output
