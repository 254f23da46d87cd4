"""Reconcile on real PostgreSQL and DuckLake: planted differences are found and repaired both
ways, repair is idempotent, ticks lost by both stay reported as gaps, and the integrity
report lands in both stores."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
import redis
from click.testing import CliRunner

from factories import DAY, row_of, without
from helpers import settings_env, store_both
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher, group_info
from tickvault.core.wire import KST
from tickvault.dev.simulate import generate_day, publish
from tickvault.services.archiver import build_archiver
from tickvault.services.sync import verify
from tickvault.services.sync.reconcile import missing_from, reconcile, repair_windows
from tickvault.services.sync.report import MinuteDiff
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

UTC = UTC


def keys(table: pa.Table) -> set[tuple]:
    return set(zip(*(table.column(c).to_pylist() for c in ("symbol", "ts", "cum_volume"))))


def stored(settings: Settings) -> tuple[set[tuple], set[tuple]]:
    start, end = trading_day_bounds(DAY)
    hot, cold = HotStore(settings), Lake(settings)
    try:
        return keys(hot.read_ticks(start, end)), keys(cold.read_ticks(start, end))
    finally:
        hot.close()
        cold.close()


def minute_of(table: pa.Table, row: int) -> datetime:
    return table.column("ts")[row].as_py().replace(second=0, microsecond=0)


def pick_rows_in_distinct_minutes(table: pa.Table, symbol: str, count: int) -> list[int]:
    """Rows of ``symbol`` that each sit in a different minute (so the plants don't overlap)."""
    out: list[int] = []
    seen: set[datetime] = set()
    nth = 20
    while len(out) < count:
        row = row_of(table, symbol, nth)
        if minute_of(table, row) not in seen:
            seen.add(minute_of(table, row))
            out.append(row)
        nth += 7
    return out


def test_planted_differences_are_found_and_repaired_both_ways(settings: Settings) -> None:
    truth = generate_day(DAY, symbols=3, ticks=3000, seed=11)
    symbols = sorted(set(truth.column("symbol").to_pylist()))
    hot_lost = pick_rows_in_distinct_minutes(truth, symbols[0], 3)
    cold_lost = pick_rows_in_distinct_minutes(truth, symbols[1], 2) + [row_of(truth, symbols[0], 400)]
    store_both(settings, without(truth, hot_lost), without(truth, cold_lost))

    found = reconcile(settings, DAY, repair=False)
    assert not found.consistent
    expected_minutes = {(truth.column("symbol")[r].as_py(), minute_of(truth, r)) for r in hot_lost + cold_lost}
    assert {(d.symbol, d.minute) for d in found.differences} == expected_minutes
    assert found.added_to_hot == found.added_to_cold == 0
    assert stored(settings) == (keys(truth) - keys(truth.take(hot_lost)), keys(truth) - keys(truth.take(cold_lost)))

    repaired = reconcile(settings, DAY, repair=True)
    assert repaired.added_to_hot == len(hot_lost)
    assert repaired.added_to_cold == len(cold_lost)
    assert repaired.consistent, repaired.after.reasons()
    hot_keys, cold_keys = stored(settings)
    assert hot_keys == cold_keys == keys(truth)
    assert verify(settings, DAY).consistent
    result = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat()], env=settings_env(settings))
    assert result.exit_code == 0, result.output

    # idempotent: nothing left to do
    again = reconcile(settings, DAY, repair=True)
    assert again.differences == [] and again.added_to_hot == again.added_to_cold == 0

    # a run that changes nothing leaves the lake's rows alone (each lake write is a commit)
    lake = Lake(settings)
    snapshots = lake.snapshot_id()
    reconcile(settings, DAY, repair=True)
    assert lake.snapshot_id() == snapshots
    lake.close()

    # the integrity report: same rows in both stores, repairs accumulated
    for store in (HotStore(settings), Lake(settings)):
        rows = {r["symbol"]: r for r in store.read_integrity_report(DAY) if r["venue"] == "KRX"}
        venues = {(r["venue"], r["symbol"]) for r in store.read_integrity_report(DAY)}
        store.close()
        assert set(rows) == set(symbols)
        assert venues == set(zip(truth.column("venue").to_pylist(), truth.column("symbol").to_pylist()))
        assert rows[symbols[0]]["repaired_hot"] == 3 and rows[symbols[0]]["repaired_cold"] == 1
        assert rows[symbols[1]]["repaired_cold"] == 2 and rows[symbols[1]]["repaired_hot"] == 0
        assert rows[symbols[0]]["status"] == "repaired" and rows[symbols[2]]["status"] == "ok"
        per_symbol = truth.filter(pa.compute.equal(truth.column("symbol"), symbols[2]))
        assert rows[symbols[2]]["ticks"] == per_symbol.num_rows
        assert rows[symbols[2]]["volume"] == pa.compute.sum(per_symbol.column("volume")).as_py()


def test_ticks_lost_by_both_remain_gaps_with_exact_volume(settings: Settings) -> None:
    truth = generate_day(DAY, symbols=2, ticks=1500, seed=5)
    symbol = truth.column("symbol")[0].as_py()
    both_lost = [row_of(truth, symbol, 30), row_of(truth, symbol, 31), row_of(truth, symbol, 32)]
    hot_only = [row_of(truth, symbol, 300)]  # a different minute
    cold_only = [row_of(truth, symbol, 600)]
    assert len({minute_of(truth, r) for r in (both_lost[0], hot_only[0], cold_only[0])}) == 3
    store_both(settings, without(truth, both_lost + hot_only), without(truth, both_lost + cold_only))

    report = reconcile(settings, DAY, repair=True)
    assert report.added_to_hot == 1 and report.added_to_cold == 1
    assert not report.consistent
    lost_volume = sum(truth.column("volume")[r].as_py() for r in both_lost)
    assert [(g.symbol, g.missing_volume) for g in report.after.gaps] == [(symbol, lost_volume)]
    assert report.after.differences == []
    gap = report.after.gaps[0]
    assert gap.start_cum_volume == truth.column("cum_volume")[row_of(truth, symbol, 29)].as_py()
    assert gap.end_cum_volume == truth.column("cum_volume")[row_of(truth, symbol, 33)].as_py()
    rows = {r["symbol"]: r for r in HotStore(settings).read_integrity_report(DAY) if r["venue"] == "KRX"}
    assert rows[symbol]["gaps"] == 1 and rows[symbol]["missing_volume"] == lost_volume and rows[symbol]["status"] == "gaps"

    result = CliRunner().invoke(cli, ["reconcile", "--date", DAY.isoformat(), "--json"], env=settings_env(settings))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["format"] == "tickvault.reconcile/1" and doc["after"]["missing_volume"] == lost_volume


def test_reconcile_cli_repairs(settings: Settings) -> None:
    truth = generate_day(DAY, symbols=2, ticks=800, seed=2)
    store_both(settings, without(truth, [5, 6, 7]), truth)
    env = settings_env(settings)
    result = CliRunner().invoke(cli, ["reconcile", "--date", DAY.isoformat()], env=env)
    assert result.exit_code == 1 and "--repair" in result.stderr
    result = CliRunner().invoke(cli, ["reconcile", "--date", DAY.isoformat(), "--repair", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added_to_hot"] == 3


def test_until_leaves_the_latest_minutes_alone(settings: Settings) -> None:
    truth = generate_day(DAY, symbols=2, ticks=800, seed=4)
    last = truth.num_rows - 1
    late_ts = truth.column("ts")[last].as_py()
    store_both(settings, truth, without(truth, [last]))
    report = reconcile(settings, DAY, repair=True, until=late_ts - timedelta(minutes=1))
    assert report.differences == [] and report.added_to_cold == 0


# --- pure parts

def test_repair_windows_merge_adjacent_minutes() -> None:
    t = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    m = lambda k: t + timedelta(minutes=k)  # noqa: E731
    diffs = [MinuteDiff("A", m(0), None, None), MinuteDiff("B", m(1), None, None), MinuteDiff("A", m(5), None, None),
             MinuteDiff("C", m(40), None, None)]
    assert repair_windows(diffs) == [(m(0), m(6), ["A", "B"]), (m(40), m(41), ["C"])]
    long = [MinuteDiff("A", m(k), None, None) for k in range(70)]
    windows = repair_windows(long)
    assert [(w[1] - w[0]) for w in windows] == [timedelta(minutes=30), timedelta(minutes=30), timedelta(minutes=10)]


def test_missing_from_is_an_anti_join_on_the_natural_key() -> None:
    ticks = generate_day(date(2026, 11, 20), symbols=2, ticks=50, seed=1)
    other = without(ticks, [3, 9])
    missing = missing_from(ticks, other)
    assert keys(missing) == keys(ticks.take([3, 9]))
    assert missing.schema == ticks.schema
    assert missing_from(ticks, ticks).num_rows == 0


def test_days_beyond_hot_retention_are_refused(settings: Settings) -> None:
    old = datetime.now(KST).date() - timedelta(days=settings.tick_retention_days + 1)
    with pytest.raises(ValueError, match="retention"):
        reconcile(settings, old, repair=True)


def test_reconcile_runs_alongside_both_archivers(settings: Settings, rclient: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    """Reconcile (with repair) while both archivers write: neither side errors or stalls,
    and the day ends up complete and equal in both stores."""
    truth = generate_day(DAY, symbols=4, ticks=8000, seed=41)
    archivers = [build_archiver(settings, g, consumer=f"{g}-1") for g in ("hot", "cold")]
    for a in archivers:
        a.store.init()
        a.consumer.ensure_group()
    threads = [threading.Thread(target=a.run) for a in archivers]
    for t in threads:
        t.start()
    publisher = Publisher(rclient, settings.stream)
    reports = []
    try:
        for part in range(0, truth.num_rows, 2000):
            publish(publisher, truth.slice(part, 2000))
            reports.append(reconcile(settings, DAY, repair=True))
        for _ in range(1200):
            groups = group_info(rclient, settings.stream)
            if all(groups[g]["lag"] == 0 and groups[g]["pending"] == 0 for g in ("hot", "cold")):
                break
            threading.Event().wait(0.05)
    finally:
        for a in archivers:
            a.stop()
        for t in threads:
            t.join(30)
        for a in archivers:
            a.store.close()
    assert not any(t.is_alive() for t in threads)
    assert "failed" not in caplog.text
    final = reconcile(settings, DAY, repair=True)
    assert final.consistent, final.after.reasons()
    hot_keys, cold_keys = stored(settings)
    assert hot_keys == cold_keys == keys(truth)
    assert len(reports) == 4


def test_universe_pairs_without_ticks_get_a_missing_row(settings: Settings) -> None:
    truth = generate_day(DAY, symbols=3, ticks=900, seed=6)
    store_both(settings, truth, truth)
    pairs = sorted(set(zip(truth.column("venue").to_pylist(), truth.column("symbol").to_pylist())))
    absent = ("NXT", next(s for v, s in pairs if ("NXT", s) not in pairs))
    with HotStore(settings) as hot:
        hot.write_universe(DAY, [*pairs, absent], "test")
    report = reconcile(settings, DAY, repair=True)
    assert not report.consistent and report.after is not None and report.after.silent == [absent]
    for store in (HotStore(settings), Lake(settings)):
        rows = {(r["venue"], r["symbol"]): r for r in store.read_integrity_report(DAY)}
        store.close()
        assert set(rows) == {*pairs, absent}
        assert rows[absent]["status"] == "missing" and rows[absent]["ticks"] == 0
        assert {r["status"] for key, r in rows.items() if key != absent} == {"ok"}
