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
from tickvault.core import calendar
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

    krx = day_table.filter(pc.equal(day_table.column("venue"), "KRX"))
    secs = _kst_seconds(krx)
    continuous = (secs >= 0) & (secs < 6 * 3600 + 20 * 60)
    closing = secs == 6 * 3600 + 30 * 60
    assert closing.sum() == 12  # one closing-auction print per symbol
    assert (secs == 0).sum() >= 12  # and an opening-auction print each
    assert not np.any((secs > 6 * 3600 + 20 * 60) & (secs < 6 * 3600 + 40 * 60) & ~closing)  # the closing call is quiet
    per_half_hour = np.bincount(secs[continuous] // 1800)
    assert per_half_hour[0] > 1.5 * np.median(per_half_hour)  # heavier open
    assert per_half_hour[-1] > np.median(per_half_hour)  # and a busier close
    received = day_table.column("received_at").cast(pa.int64()).to_numpy()
    assert np.all(received >= day_table.column("ts").cast(pa.int64()).to_numpy())


def _sessions_hit(table: pa.Table) -> Counter[tuple[str, str | None]]:
    return Counter(
        (v, w.name if (w := calendar.in_session(ts, v)) else None)
        for v, ts in zip(table.column("venue").to_pylist(), table.column("ts").to_pylist())
    )


def test_two_venues_every_tick_inside_its_venues_sessions(day_table: pa.Table) -> None:
    plan = plan_day(12, 30_000, 5)
    hits = _sessions_hit(day_table)
    assert not [k for k in hits if k[1] is None]  # nothing in a quiet window or outside the day's sessions
    # 2026-11-20 is after the KRX extension: every session of both venues trades, 07:00-20:00
    assert {name for v, name in hits if v == "KRX"} == {
        "pre_market", "pre_market_close", "continuous", "closing_auction", "post_market_close", "after_market"}
    assert {name for v, name in hits if v == "NXT"} == {"pre_market", "main_market", "after_market"}
    nxt = day_table.filter(pc.equal(day_table.column("venue"), "NXT"))
    nxt_symbols = set(nxt.column("symbol").to_pylist())
    assert nxt_symbols == {s for s, on in zip(plan.symbols, plan.nxt) if on} and len(nxt_symbols) == 4
    assert plan.universe() == sorted([("KRX", s) for s in plan.symbols] + [("NXT", s) for s in nxt_symbols], key=lambda p: (p[1], p[0]))
    # NXT's after-market opens with one single-price print per symbol at 15:40:00, with no aggressor
    at_1540 = nxt.filter(pc.equal(nxt.column("ts"), pa.scalar(datetime(2026, 11, 20, 15, 40, tzinfo=KST), nxt.schema.field("ts").type)))
    assert set(at_1540.column("symbol").to_pylist()) == nxt_symbols and at_1540.column("side").null_count >= len(nxt_symbols)
    # NXT carries roughly a third of its symbols' trades, the most active symbols are the NXT ones
    both = day_table.filter(pc.is_in(day_table.column("symbol"), pa.array(sorted(nxt_symbols))))
    assert 0.25 < nxt.num_rows / both.num_rows < 0.45
    assert both.num_rows > 0.5 * day_table.num_rows


def test_before_nxt_and_before_the_krx_extension() -> None:
    old = generate_day(date(2024, 5, 2), symbols=4, ticks=2_000, seed=1)  # before NXT: KRX only
    assert set(old.column("venue").to_pylist()) == {"KRX"} and old.num_rows == 2_000
    hits = _sessions_hit(old)
    assert ("KRX", None) not in hits and ("KRX", "after_hours_single_price") in hits
    spring = generate_day(date(2026, 3, 20), symbols=10, ticks=20_000, seed=1)
    nxt_symbols = set(spring.filter(pc.equal(spring.column("venue"), "NXT")).column("symbol").to_pylist())
    single = spring.filter(pc.equal(spring.column("venue"), "KRX"))
    single_symbols = {
        s for s, ts in zip(single.column("symbol").to_pylist(), single.column("ts").to_pylist())
        if (w := calendar.in_session(ts, "KRX")) is not None and w.name == "after_hours_single_price"
    }
    assert single_symbols and not single_symbols & nxt_symbols  # NXT-eligible symbols skip KRX's 시간외 단일가
    times = {t.astimezone(KST).time() for t in single.column("ts").to_pylist() if t.astimezone(KST).hour >= 16}
    assert all(t.minute % 10 == 0 and t.second == 0 for t in times)  # single-price matches every 10 minutes
    krx_only = generate_day(date(2026, 3, 20), symbols=10, ticks=2_000, seed=1, nxt_share=0)
    assert set(krx_only.column("venue").to_pylist()) == {"KRX"}


def test_independent_cum_volume_per_venue(day_table: pa.Table) -> None:
    for (venue, symbol), rows in day_table.to_pandas().groupby(["venue", "symbol"]):
        rows = rows.sort_values("cum_volume")
        assert rows["cum_volume"].iloc[0] == rows["volume"].iloc[0], (venue, symbol)  # each venue starts its day at zero
        assert (rows["cum_volume"].diff().iloc[1:] == rows["volume"].iloc[1:]).all()


def test_prices_on_grid_inside_limits_and_cum_volume_consistent(day_table: pa.Table) -> None:
    plan = plan_day(12, 30_000, 5)
    limits = {s: (lo, hi) for s, lo, hi in zip(plan.symbols, plan.limit_down, plan.limit_up)}
    df = day_table.to_pandas()
    df["price_i"] = df["price"].astype(float).round().astype(np.int64)
    assert (df["price"].astype(float) == df["price_i"]).all()
    assert (df["price_i"] % tick_size(df["price_i"].to_numpy()) == 0).all()
    for (_venue, symbol), rows in df.groupby(["venue", "symbol"], sort=False):
        lo, hi = limits[symbol]
        prev = plan.prev_close[plan.symbols.index(symbol)]
        assert rows["price_i"].between(lo, hi).all() and lo >= 0.7 * prev and hi <= 1.3 * prev
        rows = rows.sort_values("cum_volume")
        assert rows["ts"].is_monotonic_increasing
        assert (rows["volume"] > 0).all()


def test_session_times_follow_the_calendar() -> None:
    late = generate_day(date(2026, 1, 2), symbols=2, ticks=400, seed=1, nxt_share=0)  # first trading day of 2026: 10:00 open
    kst = [t.astimezone(KST) for t in late.column("ts").to_pylist()]
    continuous = [t for t in kst if "09:40:00" <= t.time().isoformat() < "15:30:00"]
    assert min(continuous).time().isoformat() == "10:00:00"
    assert min(kst).time().isoformat() >= "09:30:00"  # the pre-market closing-price session moved to 09:30
    weekend = generate_day(date(2026, 11, 21), symbols=2, ticks=400, seed=1)  # a Saturday: the rule's regular sessions
    kst = [t.astimezone(KST) for t in weekend.column("ts").to_pylist()]
    assert min(kst).time().isoformat() >= "07:00:00" and max(kst).time().isoformat() < "20:00:00"
    assert sum(t.time().isoformat() == "15:30:00" for t in kst) >= 2


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
    assert "published 2100 ticks (2000 distinct" in result.output and "as 3 stream entries" in result.output  # v2 frames of 1000
    stored = pq.read_table(truth)
    assert stored.num_rows == 2000 and stored.schema.names == TICK_SCHEMA.names
    assert stored.equals(generate_day(DAY, symbols=3, ticks=2000, seed=4).sort_by([(k, "ascending") for k in NATURAL_KEY]))
    assert rclient.xlen(settings.stream) == 3
    assert pc.count_distinct(stored.column("symbol")).as_py() == 3


def test_cli_rejects_bad_input() -> None:
    runner = CliRunner()
    bad_date = runner.invoke(cli, ["simulate", "--date", "20261120", "--no-publish"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    too_few = runner.invoke(cli, ["simulate", "--symbols", "10", "--ticks", "5", "--no-publish"])
    assert too_few.exit_code == 2 and "at least 2 per symbol" in too_few.output


def test_cli_json_summary_and_unreachable_redis(settings: Settings, rclient: redis.Redis) -> None:
    env = {"TICKVAULT_REDIS_URL": settings.redis_dsn, "TICKVAULT_STREAM": settings.stream}
    ok = CliRunner().invoke(cli, ["simulate", "--date", "2026-11-20", "--symbols", "2", "--ticks", "300", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.stdout)
    assert summary["entries"] == summary["ticks"] == 300 and summary["symbols"] == 2
    assert "2026-11-20T07:00:00+09:00" <= summary["first_ts"] < summary["last_ts"] < "2026-11-20T20:00:00+09:00"
    assert summary["venues"]["KRX"]["symbols"] == 2 and summary["venues"]["NXT"]["symbols"] == 1
    down = CliRunner().invoke(cli, ["simulate", "--ticks", "10", "--symbols", "1"], env={"TICKVAULT_REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"})
    assert down.exit_code == 1 and "unreachable" in down.stderr and "s3cret" not in down.output
