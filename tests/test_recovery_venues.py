"""Recovery per venue: planted gaps of a two-venue simulated day (KRX and NXT) in real PostgreSQL
and DuckLake, filled per venue through the recovery source interface, then a re-run that
changes nothing. The broker side is a small truth-backed source per venue (the KIS/Kiwoom
stand-ins exercise the HTTP clients in test_recovery.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, time

import pyarrow as pa
import pyarrow.compute as pc

from factories import row_of, without
from helpers import store_both
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.wire import KST, NATURAL_KEY
from tickvault.dev.simulate import generate_day, plan_day
from tickvault.ops.run import recovery_time, scheduled_jobs
from tickvault.ops.schedule import describe
from tickvault.services.brokers.common import BrokerTrade, MinuteBar
from tickvault.services.recovery import recover_venues
from tickvault.services.recovery.report import report_path
from tickvault.services.sync import verify
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 20)
SYMBOLS, TICKS, SEED = 6, 3_000, 23


class TruthSource:
    """A broker that knows every trade of one venue (exact cum_volume, like KIS)."""

    name = "truth"
    exact_cum_volume = True

    def __init__(self, truth: pa.Table, venue: str):
        self.venue = venue
        mine = truth.filter(pc.equal(truth.column("venue"), venue)).sort_by([("symbol", "ascending"), ("cum_volume", "ascending")])
        self.trades_of: dict[str, list[BrokerTrade]] = defaultdict(list)
        for row in mine.to_pylist():
            self.trades_of[row["symbol"]].append(BrokerTrade(row["ts"].astimezone(KST), row["price"], row["volume"], row["cum_volume"]))
        self.counts: dict[str, int] = defaultdict(int)

    def day_volume(self, symbol: str, day: date, today: date) -> int | None:
        self.counts["day_volume"] += 1
        trades = self.trades_of.get(symbol, [])
        return trades[-1].cum_volume if trades else 0

    def minute_bars(self, symbol: str, day: date, today: date, until: str) -> list[MinuteBar]:
        self.counts["minute_bars"] += 1
        by_minute: dict[datetime, list[BrokerTrade]] = defaultdict(list)
        for t in self.trades_of.get(symbol, []):
            by_minute[t.ts.replace(second=0)].append(t)
        return [MinuteBar(m, ts[0].price, max(t.price for t in ts), min(t.price for t in ts), ts[-1].price, sum(t.volume for t in ts))
                for m, ts in sorted(by_minute.items())]

    def trades(self, symbol: str, day: date, today: date, windows: list[tuple[datetime, datetime]]) -> list[BrokerTrade]:
        self.counts["trades"] += 1
        return [t for t in self.trades_of.get(symbol, []) if any(a <= t.ts < b for a, b in windows)]

    def calls(self) -> dict[str, int]:
        return {"total": sum(self.counts.values()), **self.counts}

    def close(self) -> None:
        pass


def _rows(table: pa.Table, venue: str, symbol: str) -> list[int]:
    venues, symbols = table.column("venue").to_pylist(), table.column("symbol").to_pylist()
    return [i for i in range(table.num_rows) if venues[i] == venue and symbols[i] == symbol]


def _keys(table: pa.Table) -> set[tuple]:
    return set(zip(*(table.column(c).to_pylist() for c in (*NATURAL_KEY, "volume"))))


def test_planted_gaps_in_both_venues_are_filled_and_a_rerun_changes_nothing(settings: Settings) -> None:
    truth = generate_day(DAY, symbols=SYMBOLS, ticks=TICKS, seed=SEED)
    plan = plan_day(SYMBOLS, TICKS, SEED)
    nxt_symbols = [s for s, on in zip(plan.symbols, plan.nxt) if on]
    krx_symbol = next(s for s in plan.symbols if s not in nxt_symbols)
    a, b = nxt_symbols
    volume = truth.column("volume").to_pylist()
    lost = {
        "krx": [row_of(truth, krx_symbol, n, "KRX") for n in (10, 11, 12)],
        "nxt": [row_of(truth, a, n, "NXT") for n in (4, 5)] + [row_of(truth, a, len(_rows(truth, "NXT", a)) - 1, "NXT")],
        "nxt_series": _rows(truth, "NXT", b),  # symbol b's whole NXT day: known only from the universe
    }
    lost_rows = [i for rows in lost.values() for i in rows]
    stored = without(truth, lost_rows)
    store_both(settings, stored, stored)
    with HotStore(settings) as hot:
        hot.write_universe(DAY, plan.universe(), "test")
    lake = Lake(settings)
    lake.write_universe(DAY, plan.universe(), "test")

    before = verify(settings, DAY)
    assert not before.consistent and before.silent == [("NXT", b)]
    assert before.venues()["KRX"]["missing_volume"] == sum(volume[i] for i in lost["krx"])
    assert before.venues()["NXT"]["missing_volume"] == sum(volume[i] for i in lost["nxt"][:2])  # the last trade: only the broker knows

    sources = {v: TruthSource(truth, v) for v in ("KRX", "NXT")}
    reports = recover_venues(settings, DAY, ["KRX", "NXT"], today=DAY, sources=sources)
    assert [r.venue for r in reports] == ["KRX", "NXT"]
    for report in reports:
        assert report.complete, report.render()
    krx, nxt = reports
    assert {(s.venue, s.symbol) for s in krx.symbols} == {("KRX", s) for s in plan.symbols}
    assert {(s.venue, s.symbol) for s in nxt.symbols} == {("NXT", s) for s in nxt_symbols}
    per = {(s.venue, s.symbol): s for r in reports for s in r.symbols}
    assert per[("KRX", krx_symbol)].ticks_recovered == 3 and per[("KRX", krx_symbol)].volume_recovered == sum(volume[i] for i in lost["krx"])
    assert per[("NXT", a)].ticks_recovered == 3 and per[("NXT", a)].volume_recovered == sum(volume[i] for i in lost["nxt"])
    assert per[("NXT", b)].ticks_recovered == len(lost["nxt_series"])
    assert sum(s.ticks_recovered for s in krx.symbols) == 3  # nothing else touched
    start, end = trading_day_bounds(DAY)
    recovered = lake.read_ticks(start, end)
    assert _keys(recovered) == _keys(truth)
    assert set(recovered.filter(pc.equal(recovered.column("source"), "recovery")).column("venue").to_pylist()) == {"KRX", "NXT"}
    with HotStore(settings) as hot:
        assert _keys(hot.read_ticks(start, end)) == _keys(truth)
        with hot.connect() as conn:
            rows = conn.execute(f'select venue, count(*) from "{settings.pg_schema}".recovery_report where day = %s and complete '
                                "group by venue order by venue", (DAY,)).fetchall()
    assert [tuple(r) for r in rows] == [("KRX", SYMBOLS), ("NXT", len(nxt_symbols))]
    assert verify(settings, DAY).consistent
    assert json.loads(report_path(settings.lake_dir, DAY, "truth", "NXT").read_text())["venue"] == "NXT"
    assert json.loads(report_path(settings.lake_dir, DAY, "truth").read_text())["venue"] == "KRX"
    assert "NXT   " + a in nxt.render()

    # re-run: continuity holds and the day volumes agree: nothing is fetched, nothing written
    snapshot = lake.snapshot_id()
    again = recover_venues(settings, DAY, ["KRX", "NXT"], today=DAY, sources={v: TruthSource(truth, v) for v in ("KRX", "NXT")})
    assert all(r.complete for r in again)
    assert sum(s.ticks_recovered + s.copied_to_hot + s.copied_to_lake for r in again for s in r.symbols) == 0
    assert lake.snapshot_id() == snapshot
    lake.close()


def test_each_venue_recovers_after_its_own_close() -> None:
    settings = Settings(recovery_margin_minutes=15)
    jobs = {job.name: job for job in scheduled_jobs(settings, ("recovery",))}
    assert [describe(j) for j in jobs.values()] == [
        "recovery-krx at KRX close + 15 min on trading days", "recovery-nxt at NXT close + 15 min on trading days"]
    krx, nxt = recovery_time("KRX", 15), recovery_time("NXT", 15)
    assert krx(date(2026, 3, 20)) == time(18, 25)  # after the 18:00 single-price match (stamped until 18:10)
    assert krx(DAY) == time(20, 15)  # after the KRX 2026 extension: after-market until 20:00
    assert nxt(DAY) == time(20, 15) and nxt(date(2025, 11, 13)) == time(20, 15)
    assert nxt(date(2024, 5, 2)) is None  # before NXT's launch: no NXT run
    # the scheduler: the NXT run is due only after 20:15 KST, the KRX one (before the extension) after 18:25
    job = jobs["recovery-nxt"]
    assert job.due(datetime.combine(date(2026, 3, 20), time(20, 14), KST)) is None
    assert job.due(datetime.combine(date(2026, 3, 20), time(20, 16), KST)) == date(2026, 3, 20)
    assert jobs["recovery-krx"].due(datetime.combine(date(2026, 3, 20), time(18, 26), KST)) == date(2026, 3, 20)
    assert jobs["recovery-krx"].due(datetime.combine(date(2026, 3, 20), time(18, 24), KST)) is None
    assert jobs["recovery-nxt"].due(datetime.combine(date(2024, 5, 2), time(23, 0), KST)) is None
