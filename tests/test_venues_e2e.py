"""A mixed two-venue day (KRX + NXT, every session 07:00-20:00) through the simulator, Redis and
both real archivers: hot == cold == truth for each venue, continuity proven per (venue,
symbol) against the day's universe, and verify names the exact missing volume of the venue
whose ticks are deleted."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import redis

from factories import DAY, row_of
from helpers import export, sort_key
from tickvault.core import calendar
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.dev.simulate import generate_day, plan_day, publish, store_universe
from tickvault.services.archiver import build_archiver
from tickvault.services.sync import verify
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

SYMBOLS, TICKS, SEED = 10, 40_000, 17


def _of(table: pa.Table, venue: str) -> pa.Table:
    return table.filter(pc.equal(table.column("venue"), venue))


def test_mixed_day_through_both_archivers(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    truth = generate_day(DAY, symbols=SYMBOLS, ticks=TICKS, seed=SEED)
    plan = plan_day(SYMBOLS, TICKS, SEED)
    for store in (HotStore(settings), Lake(settings)):
        store.init()
        store.close()
    store_universe(settings, DAY, plan)
    publish(Publisher(rclient, settings.stream), truth, dup_rate=0.02, shuffle_window=50, seed=SEED)
    threads = [threading.Thread(target=build_archiver(settings, g, consumer=f"e2e-{g}").run_until_idle, kwargs={"idle_reads": 3})
               for g in ("hot", "cold")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # every session of both venues traded (the day is after the KRX 2026 extension: 07:00-20:00)
    sessions = {(v, w.name) for v, ts in zip(truth.column("venue").to_pylist(), truth.column("ts").to_pylist())
                if (w := calendar.in_session(ts, v)) is not None}
    assert sessions == {(w.venue, w.name) for v in ("KRX", "NXT") for w in calendar.sessions(DAY, v) if w.trades_start is not None}
    assert len(sessions) == 9
    stores = {source: export(settings, source, tmp_path / f"{source}.parquet") for source in ("hot", "cold")}
    for venue in ("KRX", "NXT"):
        expected = sort_key(_of(truth, venue))
        assert expected.num_rows > 0
        for source, got in stores.items():
            assert _of(got, venue).equals(expected), f"{source} {venue} differs from the truth"
    report = verify(settings, DAY)
    assert report.consistent, report.reasons()
    venues = report.venues()
    assert venues["KRX"]["series"] == venues["KRX"]["universe"] == SYMBOLS
    assert venues["NXT"]["series"] == venues["NXT"]["universe"] == int(plan.nxt.sum()) > 0
    assert report.out_of_session == [] and all(v["complete"] for v in venues.values())

    # ticks of one venue deleted from the hot store: verify names that venue's exact missing volume
    symbol = next(s for s, on in zip(plan.symbols, plan.nxt) if on)
    lost = [row_of(truth, symbol, n, "NXT") for n in (30, 31, 32, 60)]
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        for i in lost:
            conn.execute(f'DELETE FROM "{settings.pg_schema}".ticks WHERE venue = %s AND symbol = %s AND cum_volume = %s',
                         ("NXT", symbol, truth.column("cum_volume")[i].as_py()))
    hot_only = verify(settings, DAY, source="hot")
    assert hot_only.venues()["NXT"]["missing_volume"] == sum(truth.column("volume")[i].as_py() for i in lost)
    assert hot_only.venues()["NXT"]["gaps"] == 2 and hot_only.venues()["KRX"]["complete"]
    both = verify(settings, DAY)  # the lake still holds them: no trade is lost, the stores differ
    assert both.gaps == [] and {d.venue for d in both.differences} == {"NXT"}
