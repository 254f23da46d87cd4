"""Continuity check on real PostgreSQL and a real DuckLake: gaps with exact missing volume,
duplicates, hot-vs-cold differences, the stable JSON and the exit code."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from factories import DAY, day_ticks, row_of, simulated_day, without
from helpers import settings_env, store_both
from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.wire import KST, TICK_SCHEMA, ticks_to_table
from tickvault.services.sync import VERIFY_FORMAT, Gap, VerifyReport, verify
from tickvault.services.sync.gaps import LastTick, union_gaps
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


def test_clean_day_is_consistent_and_cli_exits_0(settings: Settings) -> None:
    ticks = simulated_day()
    store_both(settings, ticks, ticks)
    report = verify(settings, DAY)
    assert report.consistent, report.reasons()
    assert report.stores["hot"].ticks == report.stores["cold"].ticks == ticks.num_rows
    assert report.stores["hot"].volume == pc.sum(ticks.column("volume")).as_py()
    result = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat(), "--json"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format"] == VERIFY_FORMAT and doc["consistent"] is True and doc["gaps"] == []


def test_ticks_missing_from_both_are_gaps_with_exact_volume(settings: Settings) -> None:
    ticks = simulated_day()
    symbol = ticks.column("symbol")[0].as_py()
    lost = [row_of(ticks, symbol, 10), row_of(ticks, symbol, 11)]  # two adjacent trades
    lost_volume = sum(ticks.column("volume")[i].as_py() for i in lost)
    before = ticks.slice(row_of(ticks, symbol, 9), 1).to_pylist()[0]
    after = ticks.slice(row_of(ticks, symbol, 12), 1).to_pylist()[0]
    store_both(settings, without(ticks, lost), without(ticks, lost))

    report = verify(settings, DAY)
    assert not report.consistent
    assert report.gaps == [
        Gap(symbol, before["ts"], before["cum_volume"], after["ts"], after["cum_volume"], after["volume"], lost_volume)
    ]
    assert report.missing_volume == lost_volume
    assert report.differences == []
    for store in ("hot", "cold"):
        assert [g.missing_volume for g in report.stores[store].gaps] == [lost_volume]

    result = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat(), "--json"], env=settings_env(settings))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["missing_volume"] == lost_volume
    assert doc["gaps"][0]["symbol"] == symbol and doc["gaps"][0]["kind"] == "gap"
    assert VerifyReport.gaps_from_dict(doc) == report.gaps
    assert "not consistent" in result.stderr

    text = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat(), "--source", "cold", "--symbols", symbol], env=settings_env(settings))
    assert text.exit_code == 1
    assert f"gap  {symbol}" in text.stdout and f"missing volume {lost_volume}" in text.stdout
    assert text.stdout.startswith("cold")


def test_first_tick_of_the_day_missing_is_a_gap_from_day_start(settings: Settings) -> None:
    ticks = simulated_day(symbols=2, ticks=600)
    symbol = ticks.column("symbol")[0].as_py()
    first = row_of(ticks, symbol, 0)
    store_both(settings, without(ticks, [first]), without(ticks, [first]))
    report = verify(settings, DAY, source="cold")
    assert len(report.gaps) == 1
    gap = report.gaps[0]
    assert gap.start_ts is None and gap.start_cum_volume == 0
    assert gap.missing_volume == ticks.column("volume")[first].as_py()
    assert set(report.stores) == {"cold"}


def test_one_sided_loss_is_a_difference_not_a_gap_of_the_whole(settings: Settings) -> None:
    ticks = simulated_day()
    symbol = ticks.column("symbol")[1].as_py()
    lost = row_of(ticks, symbol, 50)
    store_both(settings, without(ticks, [lost]), ticks)
    report = verify(settings, DAY)
    assert report.gaps == []  # the lake still has it
    assert [g.missing_volume for g in report.stores["hot"].gaps] == [ticks.column("volume")[lost].as_py()]
    assert report.stores["cold"].consistent
    assert len(report.differences) == 1
    diff = report.differences[0]
    assert diff.symbol == symbol and diff.hot.ticks + 1 == diff.cold.ticks
    assert not report.consistent
    # checking only the lake says the lake is fine
    assert verify(settings, DAY, source="cold").consistent
    # a symbol filter that excludes the damaged symbol is consistent
    others = sorted(set(ticks.column("symbol").to_pylist()) - {symbol})
    assert verify(settings, DAY, symbols=others).consistent


def test_duplicates_and_overlaps_in_the_lake_are_reported(settings: Settings) -> None:
    ticks = simulated_day(symbols=2, ticks=400)
    store_both(settings, ticks, ticks)
    symbol = ticks.column("symbol")[0].as_py()
    lake = Lake(settings).connect()
    # write behind the lake's dedup: a plain second copy of one tick, and a conflicting tick
    # that claims an existing cumulative volume one second later
    row = ticks.slice(row_of(ticks, symbol, 5), 1)
    ts_field = row.schema.field("ts")
    shifted = row.set_column(row.schema.get_field_index("ts"), ts_field, pa.array([row.column("ts")[0].as_py() + timedelta(seconds=1)], ts_field.type))
    con = lake
    con.register("extra", pa.concat_tables([row, shifted]))
    con.execute("INSERT INTO lake.ticks (venue, symbol, ts, price, volume, cum_volume, side, source, received_at, trade_date) "
                "SELECT *, CAST(timezone('Asia/Seoul', ts) AS DATE) FROM extra")
    lake.close()

    report = verify(settings, DAY, source="cold")
    check = report.stores["cold"]
    assert check.duplicates == 1
    assert [(d.symbol, d.cum_volume, d.copies) for d in check.duplicate_samples] == [(symbol, row.column("cum_volume")[0].as_py(), 2)]
    assert [g.kind for g in check.gaps] == ["overlap"]
    assert check.gaps[0].missing_volume == -row.column("volume")[0].as_py()
    assert report.gaps == []  # an overlap loses nothing
    assert not report.consistent
    reasons = " ".join(report.reasons())
    assert "duplicate" in reasons and "overlapping" in reasons


def test_checksums_agree_between_postgres_and_duckdb(settings: Settings) -> None:
    """The reconciler's per-minute fingerprint must be computed identically by both engines,
    including sub-second timestamps and large cumulative volumes."""
    ticks = simulated_day(symbols=4, ticks=2000, seed=3)
    ts = pc.add(ticks.column("ts"), pa.scalar(timedelta(microseconds=123457)))
    big = pc.add(ticks.column("cum_volume"), pa.scalar(10**15))
    odd = ticks.set_column(ticks.schema.get_field_index("ts"), ticks.schema.field("ts"), ts).set_column(
        ticks.schema.get_field_index("cum_volume"), ticks.schema.field("cum_volume"), big)
    store_both(settings, odd, odd)
    start = datetime(2026, 11, 19, 15, tzinfo=UTC)
    end = start + timedelta(days=1)
    with HotStore(settings) as hot_store, Lake(settings) as lake:
        hot = hot_store.minute_fingerprints(start, end, None)
        cold = lake.minute_fingerprints(start, end, None)
    assert len(hot) > 100
    assert hot == cold


def test_verify_rejects_bad_input(settings: Settings) -> None:
    with pytest.raises(ValueError, match="source"):
        verify(settings, DAY, source="warm")
    result = CliRunner().invoke(cli, ["verify", "--date", "20261120"], env=settings_env(settings))
    assert result.exit_code != 0 and "YYYY-MM-DD" in result.output


# --- the union of the stores' gaps (pure)

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_union_gaps_is_the_intersection_of_missing_ranges() -> None:
    # hot lacks cum (10, 30]; cold lacks (20, 40]: only (20, 30] is lost
    hot = [Gap("A", at(1), 10, at(3), 35, 5, 20)]
    cold = [Gap("A", at(2), 20, at(4), 50, 10, 20)]
    last = {"hot": {("KRX", "A"): LastTick("A", at(9), 100)}, "cold": {("KRX", "A"): LastTick("A", at(9), 100)}}
    assert union_gaps({"hot": hot, "cold": cold}, last) == [Gap("A", at(2), 20, at(3), 35, 5, 10)]


def test_union_gaps_tail_and_absent_symbol() -> None:
    # cold ends at cum 50 (its tail is unknown), hot has a gap (60, 70] after it: lost.
    hot = [Gap("A", at(5), 60, at(6), 80, 10, 10)]
    last = {"hot": {("KRX", "A"): LastTick("A", at(9), 100)}, "cold": {("KRX", "A"): LastTick("A", at(4), 50)}}
    assert union_gaps({"hot": hot, "cold": []}, last) == [Gap("A", at(5), 60, at(6), 80, 10, 10)]
    # a symbol the lake lacks entirely: hot's gaps are the union's gaps
    hot_b = [Gap("B", None, 0, at(1), 7, 2, 5)]
    last_b = {"hot": {("KRX", "B"): LastTick("B", at(9), 30)}, "cold": {}}
    assert union_gaps({"hot": hot_b, "cold": []}, last_b) == hot_b
    # both stores end early at different points: no gap (the end of day is unknowable here)
    last_c = {"hot": {("KRX", "C"): LastTick("C", at(9), 30)}, "cold": {("KRX", "C"): LastTick("C", at(8), 20)}}
    assert union_gaps({"hot": [], "cold": []}, last_c) == []


# ---------------------------------------------------------------- per venue: missing volume, universe, sessions
def _nxt_symbol(ticks: pa.Table) -> str:
    return sorted(set(ticks.filter(pc.equal(ticks.column("venue"), "NXT")).column("symbol").to_pylist()))[0]


def test_missing_volume_is_named_per_venue(settings: Settings) -> None:
    ticks = simulated_day(symbols=4, ticks=3_000, seed=12)
    symbol = _nxt_symbol(ticks)
    lost_nxt = [row_of(ticks, symbol, n, "NXT") for n in (5, 6, 7)]
    lost_krx = [row_of(ticks, symbol, 20, "KRX")]
    volume = ticks.column("volume").to_pylist()
    stored = without(ticks, lost_nxt + lost_krx)
    store_both(settings, stored, stored)

    report = verify(settings, DAY)
    assert not report.consistent
    venues = report.venues()
    assert venues["NXT"]["missing_volume"] == sum(volume[i] for i in lost_nxt) and venues["NXT"]["gaps"] == 1
    assert venues["KRX"]["missing_volume"] == volume[lost_krx[0]] and venues["KRX"]["gaps"] == 1
    assert {(g.venue, g.symbol) for g in report.gaps} == {("NXT", symbol), ("KRX", symbol)}
    result = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat()], env=settings_env(settings))
    assert result.exit_code == 1
    assert f"NXT   1 symbols  gaps 1  missing volume {sum(volume[i] for i in lost_nxt)}" in result.output
    assert f"NXT: 1 gap(s), {sum(volume[i] for i in lost_nxt)} volume missing" in result.stderr



def test_one_venue_deleted_leaves_the_other_complete(settings: Settings) -> None:
    ticks = simulated_day(symbols=4, ticks=3_000, seed=12)
    symbol = _nxt_symbol(ticks)
    lost = [row_of(ticks, symbol, n, "NXT") for n in range(3, 9)]
    stored = without(ticks, lost)
    store_both(settings, stored, stored)
    venues = verify(settings, DAY).venues()
    assert venues["KRX"]["complete"] and venues["KRX"]["missing_volume"] == 0
    assert not venues["NXT"]["complete"]
    assert venues["NXT"]["missing_volume"] == sum(ticks.column("volume")[i].as_py() for i in lost)


def test_a_day_is_complete_only_when_every_universe_pair_has_ticks(settings: Settings) -> None:
    ticks = simulated_day(symbols=3, ticks=1_500, seed=7)
    store_both(settings, ticks, ticks)
    pairs = sorted({(v, s) for v, s in zip(ticks.column("venue").to_pylist(), ticks.column("symbol").to_pylist())})
    krx_only = next(s for v, s in pairs if v == "KRX" and ("NXT", s) not in pairs)
    with HotStore(settings) as hot:
        hot.write_universe(DAY, pairs, "test")
    report = verify(settings, DAY)
    assert report.consistent and report.universe == sorted(pairs, key=lambda p: (p[1], p[0])) and report.silent == []
    # the morning refresh said the symbol trades on NXT too, but no store holds an NXT tick of it
    lake = Lake(settings)
    try:
        lake.write_universe(DAY, [*pairs, ("NXT", krx_only)], "test")
    finally:
        lake.close()
    with HotStore(settings) as hot:
        hot.write_universe(DAY, [*pairs, ("NXT", krx_only)], "test")
    report = verify(settings, DAY)
    assert not report.consistent and report.silent == [("NXT", krx_only)]
    assert report.venues()["NXT"]["silent"] == [krx_only] and report.venues()["KRX"]["complete"]
    assert not report.venues()["NXT"]["complete"]
    assert f"not proven: 1 (venue, symbol) of the day's universe without a tick (NXT:{krx_only})" in report.reasons()
    assert verify(settings, DAY, symbols=[s for _, s in pairs if s != krx_only]).consistent  # not asked about it


def test_ticks_outside_every_session_are_stored_and_flagged(settings: Settings) -> None:
    def tick(venue: str, hh: int, mm: int, ss: int, volume: int, cum: int) -> dict[str, object]:
        ts = datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=KST)
        return {"venue": venue, "symbol": "999990", "ts": ts, "price": Decimal(1000), "volume": volume, "cum_volume": cum,
                "side": None, "source": "test", "received_at": ts}

    odd = pa.Table.from_pylist([
        tick("NXT", 8, 10, 0, 5, 5),  # pre-market: in
        tick("NXT", 9, 0, 10, 5, 10),  # quiet before the main market (a minute the 09:00:30 boundary cuts): out
        tick("NXT", 9, 0, 40, 5, 15),  # main market: in
        tick("NXT", 15, 25, 0, 5, 20),  # KRX's closing auction: NXT is quiet: out
        tick("KRX", 8, 45, 0, 7, 7),  # between the pre-market closing-price session and the open: out
        tick("KRX", 12, 0, 0, 7, 14),  # in
    ], schema=TICK_SCHEMA)
    ticks = pa.concat_tables([simulated_day(symbols=3, ticks=1_500, seed=7), odd])
    store_both(settings, ticks, ticks)
    report = verify(settings, DAY)
    assert report.consistent, report.reasons()  # stored and continuous: flagged, not inconsistent
    flagged = {(o.venue, o.symbol): o.ticks for o in report.out_of_session}
    assert flagged == {("NXT", "999990"): 2, ("KRX", "999990"): 1}
    assert report.venues()["NXT"]["out_of_session_ticks"] == 2
    assert "NXT: 2 tick(s) of 1 symbol(s) outside every NXT session" in report.flags()
    doc = report.to_dict()
    assert {(o["venue"], o["ticks"]) for o in doc["out_of_session"]} == {("NXT", 2), ("KRX", 1)}
    result = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat()], env=settings_env(settings))
    assert result.exit_code == 0 and "flag  KRX: 1 tick(s) of 1 symbol(s) outside every KRX session" in result.output


def test_a_trading_day_without_any_tick_is_not_proven(settings):
    """Issue 13.11: "both ok" on a day neither store holds a tick of was false assurance."""
    for store in (HotStore(settings), Lake(settings)):
        store.init()
        store.close()
    report = verify(settings, DAY)
    assert not report.consistent and report.no_ticks and report.stores_agree
    weekend = verify(settings, date(2026, 11, 21))
    assert weekend.consistent  # nothing trades on a Saturday: nothing to prove
    out = CliRunner().invoke(cli, ["verify", "--date", DAY.isoformat()], env=settings_env(settings))
    assert out.exit_code != 0 and "not proven" in out.output


def test_a_symbol_of_the_universe_without_ticks_is_not_proven(settings):
    store_both(settings, ticks_to_table(day_ticks(DAY, ["005930"], 30)), ticks_to_table(day_ticks(DAY, ["005930"], 30)))
    assert verify(settings, DAY).consistent
    hot = HotStore(settings)
    hot.write_universe(DAY, [("KRX", "005930"), ("KRX", "000660"), ("NXT", "005930")], source="test")
    hot.close()
    report = verify(settings, DAY)
    assert not report.consistent
    assert report.silent == [("KRX", "000660"), ("NXT", "005930")]
    assert verify(settings, DAY, symbols=["000660"]).silent == [("KRX", "000660")]
    assert verify(settings, DAY, source="cold").silent == []  # the lake recorded no universe
