"""Candles in the hot store equal candles computed independently from the ticks, in both
modes, for shuffled, redelivered and late (out-of-order) ticks; and both modes agree row
for row. The PostgreSQL-mode half always runs; the TimescaleDB half needs
TICKVAULT_TEST_TSDB_URL."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from factories import day_ticks
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.wire import KST, Tick, ticks_to_table
from tickvault.stores.contract import StreamPosition
from tickvault.stores.hot import HotStore
from truth import stored_candles, truth_candles

DAY = date(2026, 11, 20)
LEVELS = ("1m", "5m", "1h", "1d")


def scenario_ticks() -> tuple[list[Tick], list[Tick]]:
    """(first delivery, late ticks). Late ticks include bucket and day opens/closes."""
    ticks = day_ticks(DAY, ["005930", "000660", "035420"], 500, seed=21) + day_ticks(DAY + timedelta(days=1), ["005930"], 200, seed=22)
    # session edges: pre-open print, after-hours print, last second of the KST day, first of the next
    edges = [
        Tick("900100", datetime(2026, 11, 20, 8, 30, 0, tzinfo=KST), Decimal("1000"), 5, 5, None, "sim"),
        Tick("900100", datetime(2026, 11, 20, 9, 0, 0, tzinfo=KST), Decimal("1001"), 5, 10, "B", "sim"),
        Tick("900100", datetime(2026, 11, 20, 9, 0, 0, tzinfo=KST), Decimal("999"), 5, 15, "S", "sim"),
        Tick("900100", datetime(2026, 11, 20, 16, 10, 0, tzinfo=KST), Decimal("1002"), 5, 20, None, "sim"),
        Tick("900100", datetime(2026, 11, 20, 23, 59, 59, tzinfo=KST), Decimal("1003"), 5, 25, None, "sim"),
        Tick("900100", datetime(2026, 11, 21, 0, 0, 0, tzinfo=KST), Decimal("1004"), 5, 5, None, "sim"),
    ]
    ticks += edges
    rng = random.Random(23)
    late = rng.sample(ticks, len(ticks) // 8) + [ticks[0], ticks[499], ticks[500], edges[1]]
    late_keys = {t.key for t in late}
    return [t for t in ticks if t.key not in late_keys], list({t.key: t for t in late}.values())


def deliver(store: HotStore, ticks: list[Tick], stream: str, seed: int) -> int:
    """Shuffled batches through the archiver's sink, every third batch redelivered."""
    rng = random.Random(seed)
    shuffled = ticks[:]
    rng.shuffle(shuffled)
    store.init()
    added = 0
    for n, start in enumerate(range(0, len(shuffled), 97)):
        batch = ticks_to_table(shuffled[start : start + 97])
        added += store.write(batch, StreamPosition(stream, "hot", f"{n + 1}-0"))
        if n % 3 == 0:
            assert store.write(batch, StreamPosition(stream, "hot", f"{n + 1}-1")) == 0
    store.close()
    return added


def run_scenario(store: HotStore, stream: str) -> dict[str, dict]:
    early, late = scenario_ticks()
    window = (trading_day_bounds(DAY)[0], trading_day_bounds(DAY + timedelta(days=1))[1])
    assert deliver(store, early, stream, seed=1) == len(early)
    store.refresh_candles(*window)
    with store.connect() as conn:
        for level in LEVELS:
            assert stored_candles(conn, store.schema, level) == truth_candles(early, level), level
    assert deliver(store, late, stream, seed=2) == len(late)
    store.refresh_candles(*window)
    result = {}
    with store.connect() as conn:
        for level in LEVELS:
            result[level] = stored_candles(conn, store.schema, level)
            assert result[level] == truth_candles(early + late, level), level
    return result


def test_postgres_mode_candles_equal_independent_truth(settings):
    store = HotStore(settings)
    store.init()
    result = run_scenario(store, settings.stream)
    assert len(result["1d"]) == 6  # 4 symbols on DAY; 005930 and the edge symbol on the next KST date
    day_bucket = trading_day_bounds(DAY)[0]
    assert ("KRX", "900100", day_bucket) in result["1d"]
    assert result["1d"][("KRX", "900100", day_bucket)][0] == Decimal("1000")  # open = 08:30 print (lowest cum_volume)
    assert result["1d"][("KRX", "900100", day_bucket)][3] == Decimal("1003")  # close = 23:59:59 print


@pytest.mark.timescaledb
def test_both_modes_give_identical_candles(settings, tsdb_settings):
    pg_store, ts_store = HotStore(settings), HotStore(tsdb_settings)
    pg_store.init()
    ts_store.init()
    with ts_store.connect(autocommit=True) as conn:  # explicit refreshes only (see test_timescale.py)
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE hypertable_schema = %s",
            (ts_store.schema,),
        )
    assert (pg_store.mode, ts_store.mode) == ("postgres", "timescaledb")
    pg_result = run_scenario(pg_store, settings.stream)
    ts_result = run_scenario(ts_store, tsdb_settings.stream)
    for level in LEVELS:
        assert pg_result[level] == ts_result[level], level
    with pg_store.connect() as pg, ts_store.connect() as ts:
        for level in LEVELS:
            q = (f"SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
                 f"WHERE table_schema = %s AND table_name = 'candles_{level}' ORDER BY ordinal_position")
            assert pg.execute(q, (pg_store.schema,)).fetchall() == ts.execute(q, (ts_store.schema,)).fetchall(), level


def archive_simulated_day(s: Settings, store: HotStore, rclient) -> None:
    """A simulated day through Redis and the real hot archiver (1% duplicates, shuffled), with
    a tenth of the ticks arriving late, after the first refresh. Candles must equal the truth."""
    from tickvault.core.stream import Publisher
    from tickvault.dev.simulate import generate_day, publish
    from tickvault.services.archiver import build_archiver

    truth = generate_day(DAY, symbols=6, ticks=6000, seed=31)
    rng = random.Random(32)
    late_rows = sorted(rng.sample(range(truth.num_rows), truth.num_rows // 10))
    late_mask = [False] * truth.num_rows
    for i in late_rows:
        late_mask[i] = True
    import pyarrow as pa

    mask = pa.array(late_mask)
    early, late = truth.filter(pa.compute.invert(mask)), truth.filter(mask)
    ticks_of = lambda t: [Tick(**row) for row in t.to_pylist()]  # noqa: E731
    window = trading_day_bounds(DAY)
    for part, seed, expected in ((early, 1, ticks_of(early)), (late, 2, ticks_of(truth))):
        publish(Publisher(rclient, s.stream), part, dup_rate=0.01, shuffle_window=50, seed=seed)
        archiver = build_archiver(s, "hot", consumer="test-hot")
        archiver.run_until_idle(idle_reads=3)
        archiver.store.close()
        store.refresh_candles(*window)
        with store.connect() as conn:
            for level in LEVELS:
                assert stored_candles(conn, store.schema, level) == truth_candles(expected, level), level
    assert store.count_ticks(DAY) == truth.num_rows


def test_simulated_day_through_the_archiver_postgres_mode(settings, rclient):
    store = HotStore(settings)
    archive_simulated_day(settings, store, rclient)


@pytest.mark.timescaledb
def test_simulated_day_through_the_archiver_timescale_mode(tsdb_settings, rclient):
    store = HotStore(tsdb_settings)
    store.init()
    with store.connect(autocommit=True) as conn:
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE hypertable_schema = %s",
            (store.schema,),
        )
    archive_simulated_day(tsdb_settings, store, rclient)


def test_concurrent_writers_never_double_count(settings):
    """Two archivers (and a reconcile) may write the same ticks at once: every tick is stored
    once and counted once in the candles (PostgreSQL mode keeps candles in the write path)."""
    import threading

    store = HotStore(settings)
    store.init()
    early, late = scenario_ticks()
    ticks = early + late
    errors: list[BaseException] = []
    added: list[int] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        order = ticks[:]
        rng.shuffle(order)
        store = HotStore(settings)
        total = 0
        try:
            for start in range(0, len(order), 150):
                batch = ticks_to_table(order[start : start + 150])
                for _attempt in range(20):  # what the archiver does: retry the same batch
                    try:
                        total += store.write(batch, StreamPosition(settings.stream, "hot", f"{seed}-{start}"))
                        break
                    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                        continue
                else:
                    raise AssertionError("batch never committed")
            added.append(total)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(added) == len(ticks)
    with store.connect() as conn:
        for level in LEVELS:
            assert stored_candles(conn, store.schema, level) == truth_candles(ticks, level), level


def test_deferred_candles_equal_independent_truth(settings):
    """hot_candle_fold_ms > 0: writes log their delta, folds merge it — the same candles for
    shuffled, redelivered and late ticks (run_scenario folds through refresh_candles)."""
    store = HotStore(settings.model_copy(update={"hot_candle_fold_ms": 3_600_000}))
    store.init()
    assert store.defers_candles
    result = run_scenario(store, settings.stream)
    assert len(result["1d"]) == 6


def test_deferred_deltas_are_folded_once_whoever_folds(settings):
    deferred = settings.model_copy(update={"hot_candle_fold_ms": 3_600_000})
    ticks = day_ticks(DAY, ["005930", "000660"], 300, seed=41)
    writer = HotStore(deferred)
    writer.init()
    assert writer.write(ticks_to_table(ticks[:200]), StreamPosition(settings.stream, "hot", "1-0")) == 200
    assert writer.write(ticks_to_table(ticks[:200]), StreamPosition(settings.stream, "hot", "1-1")) == 0  # redelivered
    with writer.connect() as conn:
        assert stored_candles(conn, writer.schema, "1m") == {}  # not folded yet: the tables lag
    other = HotStore(settings)  # another process, folding immediately itself
    other.init()
    assert other.fold_candles() > 0
    assert other.fold_candles() == 0  # each delta once
    assert other.write(ticks_to_table(ticks[150:]), StreamPosition(settings.stream, "hot", "2-0")) == len(ticks) - 200  # folds itself
    with other.connect() as conn:
        for level in LEVELS:
            assert stored_candles(conn, other.schema, level) == truth_candles(ticks, level), level
    other.close()
    writer.close()


def test_deferred_candles_fold_when_due_and_on_maintain(settings):
    ticks = day_ticks(DAY, ["005930"], 120, seed=42)
    store = HotStore(settings.model_copy(update={"hot_candle_fold_ms": 1}))
    store.init()
    store.write(ticks_to_table(ticks[:60]), StreamPosition(settings.stream, "hot", "1-0"))
    store.write(ticks_to_table(ticks[60:]), StreamPosition(settings.stream, "hot", "2-0"))  # 1 ms passed: folds
    with store.connect() as conn:
        assert stored_candles(conn, store.schema, "1d") == truth_candles(ticks, "1d")
    lagging = HotStore(settings.model_copy(update={"hot_candle_fold_ms": 3_600_000}))
    more = day_ticks(DAY, ["000660"], 50, seed=43)
    lagging.write(ticks_to_table(more), StreamPosition(settings.stream, "hot", "3-0"))
    assert lagging.maintain()["folded_candle_deltas"] > 0
    with store.connect() as conn:
        assert stored_candles(conn, store.schema, "1m") == truth_candles(ticks + more, "1m")
    lagging.close()
    store.close()
