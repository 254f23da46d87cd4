"""Hot store, TimescaleDB mode, against a real TimescaleDB (env TICKVAULT_TEST_TSDB_URL).

Background jobs are paused in these tests and run explicitly (run_job / refresh): on
PostgreSQL 15.20 TimescaleDB 2.28's scheduler records its runs as failed, and a job firing
mid-test would make assertions about (not yet) materialised buckets racy.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
import pytest

from factories import day_ticks
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.wire import KST, UTC, ticks_to_table
from tickvault.stores.contract import StreamPosition
from tickvault.stores.hot import HotStore, HotStoreError
from tickvault.stores.hot.timescale import policy_plan, refresh_window_days
from truth import stored_candles, truth_candles

DAY = date(2026, 11, 20)


@pytest.fixture
def ts_settings(tsdb_settings):
    return tsdb_settings.model_copy(update={"hot_mode": "auto"})  # init must choose TimescaleDB by itself


def pause_jobs(store: HotStore) -> dict[tuple[str, str], int]:
    """Unschedule this schema's jobs; returns {(relation, proc): job_id} to run them by hand."""
    with store.connect(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT job_id, hypertable_name, proc_name FROM timescaledb_information.jobs WHERE hypertable_schema = %s",
            (store.schema,),
        ).fetchall()
        for job_id, _, _ in rows:
            conn.execute("SELECT alter_job(%s, scheduled => false)", (job_id,))
    return {(name, proc): job_id for job_id, name, proc in rows}


def run_job(store: HotStore, job_id: int) -> None:
    with store.connect(autocommit=True) as conn:
        conn.execute("CALL run_job(%s)", (job_id,))


@pytest.fixture
def ts_store(ts_settings):
    store = HotStore(ts_settings)
    store.init()
    store.jobs = pause_jobs(store)
    yield store
    store.close()


def jobs_snapshot(store: HotStore) -> list[tuple]:
    with store.connect() as conn:
        return conn.execute(
            "SELECT job_id, proc_name, hypertable_name, config, schedule_interval FROM timescaledb_information.jobs "
            "WHERE hypertable_schema = %s ORDER BY job_id",
            (store.schema,),
        ).fetchall()


# ---------------------------------------------------------------- no server needed
def test_policy_plan_refuses_refresh_windows_that_reach_dropped_data():
    base = Settings(pg_url="postgresql://unused", hot_mode="timescaledb")
    policies, absent = policy_plan(base)
    assert refresh_window_days(base) == base.compress_after_days + 1
    refresh = [p for p in policies if p.proc == "policy_refresh_continuous_aggregate"]
    assert len(refresh) == 4 and all(p.start_offset == timedelta(days=8) for p in refresh)
    assert ("candles_1d", "policy_retention") in absent
    with pytest.raises(HotStoreError, match="tick_retention_days=8 must be greater"):
        policy_plan(base.model_copy(update={"tick_retention_days": 8}))
    with pytest.raises(HotStoreError, match="candles_1m_retention_days=5"):
        policy_plan(base.model_copy(update={"candles_1m_retention_days": 5}))


# ---------------------------------------------------------------- real TimescaleDB
@pytest.mark.timescaledb
def test_init_creates_hypertable_caggs_and_jobs_and_is_idempotent(ts_settings):
    store = HotStore(ts_settings)
    store.init()
    assert store.mode == "timescaledb"
    assert store.extension_version and store.extension_version.startswith("2.")
    assert store.status()["mode"] == "timescaledb"
    with store.connect() as conn:
        dims = conn.execute(
            "SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_schema = %s ORDER BY 1",
            (store.schema,),
        ).fetchall()
        caggs = conn.execute(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates WHERE view_schema = %s ORDER BY 1",
            (store.schema,),
        ).fetchall()
        compressed = conn.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index FROM timescaledb_information.compression_settings "
            "WHERE hypertable_schema = %s AND hypertable_name = 'ticks' ORDER BY 1",
            (store.schema,),
        ).fetchall()
    assert dims == [("metrics", "ts", timedelta(days=1)), ("ticks", "ts", timedelta(days=1))]
    assert caggs == [("candles_1d", False), ("candles_1h", False), ("candles_1m", False), ("candles_5m", False)]
    assert ("venue", 1, None) in compressed and ("symbol", 2, None) in compressed and ("cum_volume", None, 1) in compressed
    jobs = {(name, proc): config for _, proc, name, config, _ in jobs_snapshot(store)}
    assert set(jobs) == {
        ("candles_1m", "policy_refresh_continuous_aggregate"),
        ("candles_5m", "policy_refresh_continuous_aggregate"),
        ("candles_1h", "policy_refresh_continuous_aggregate"),
        ("candles_1d", "policy_refresh_continuous_aggregate"),
        ("candles_1m", "policy_retention"),
        ("ticks", "policy_retention"),
        ("ticks", "policy_compression"),
        ("metrics", "policy_retention"),
    }
    assert jobs[("ticks", "policy_retention")]["drop_after"] == "30 days"
    assert jobs[("ticks", "policy_compression")]["compress_after"] == "7 days"
    assert jobs[("candles_1m", "policy_refresh_continuous_aggregate")]["start_offset"] == "8 days"

    before = jobs_snapshot(store)
    again = HotStore(ts_settings)
    again.init()
    assert again.last_init_changes == []
    assert jobs_snapshot(again) == before

    changed = HotStore(ts_settings.model_copy(update={"tick_retention_days": 20, "candles_1d_retention_days": 3650}))
    changed.init()
    assert sorted(changed.last_init_changes) == ["added policy_retention on candles_1d", "updated policy_retention on ticks"]
    jobs = {(name, proc): config for _, proc, name, config, _ in jobs_snapshot(changed)}
    assert jobs[("ticks", "policy_retention")]["drop_after"] == "20 days"
    assert jobs[("candles_1d", "policy_retention")]["drop_after"] == "3650 days"
    HotStore(ts_settings).init()  # back to the defaults: the 1d retention goes away again
    assert ("candles_1d", "policy_retention") not in {(n, p) for _, p, n, _, _ in jobs_snapshot(store)}


@pytest.mark.timescaledb
def test_write_path_is_unchanged_and_idempotent(ts_store, ts_settings):
    ts_store.init()
    ticks = ticks_to_table(day_ticks(DAY, ["005930", "000660"], 300))
    assert ts_store.write(ticks, StreamPosition(ts_settings.stream, "hot", "5-1")) == 600
    assert ts_store.write(ticks, StreamPosition(ts_settings.stream, "hot", "5-2")) == 0
    assert ts_store.checkpoint(ts_settings.stream, "hot") == "5-2"
    assert ts_store.upsert(ticks) == 0
    got = ts_store.read_ticks(*trading_day_bounds(DAY))
    assert got.to_pylist() == ticks.sort_by([("symbol", "ascending"), ("cum_volume", "ascending")]).to_pylist()
    assert ts_store.count_ticks(DAY) == 600
    ts_store.close()


def sink_write(store: HotStore, ticks) -> int:
    """The archiver's path: no refresh of its own, the policies (here: the test) refresh."""
    try:
        return store.write(ticks_to_table(ticks), StreamPosition("tvtest:stream", "hot", "1-0"))
    finally:
        store.close()


@pytest.mark.timescaledb
def test_real_time_aggregation_and_late_ticks_after_refresh(ts_store):
    ticks = day_ticks(DAY, ["005930", "000660"], 400, seed=5)
    late = ticks[::7] + [ticks[0], ticks[399], ticks[400]]  # includes opens/closes of buckets and of the day
    late_keys = {t.key for t in late}
    early = [t for t in ticks if t.key not in late_keys]
    late = [t for t in ticks if t.key in late_keys]
    sink_write(ts_store, early)
    with ts_store.connect() as conn:
        # nothing materialised yet: every level answers through real-time aggregation
        for level in ("1m", "5m", "1h", "1d"):
            assert stored_candles(conn, ts_store.schema, level) == truth_candles(early, level), level
    ts_store.refresh_candles(*trading_day_bounds(DAY))
    sink_write(ts_store, late)
    next_day = day_ticks(DAY + timedelta(days=1), ["005930"], 50, seed=6)
    sink_write(ts_store, next_day)
    with ts_store.connect() as conn:
        # materialised buckets are stale until the next refresh ...
        assert stored_candles(conn, ts_store.schema, "1d") != truth_candles(ticks + next_day, "1d")
        # ... while buckets after the materialised range are visible immediately
        got_1m = stored_candles(conn, ts_store.schema, "1m")
        assert {k: v for k, v in got_1m.items() if k[-1] >= trading_day_bounds(DAY)[1]} == truth_candles(next_day, "1m")
    ts_store.refresh_candles(*trading_day_bounds(DAY))
    with ts_store.connect() as conn:
        for level in ("1m", "5m", "1h", "1d"):
            assert stored_candles(conn, ts_store.schema, level) == truth_candles(ticks + next_day, level), level


@pytest.mark.timescaledb
def test_upsert_refreshes_the_candles_of_the_days_it_filled(ts_store):
    """Recovery/reconcile upserts: candles of the touched days are current right away."""
    day = (datetime.now(UTC) - timedelta(days=3)).astimezone(KST).date()
    ticks = day_ticks(day, ["005930"], 300, seed=13)
    gaps = ticks[100:140] + [ticks[0], ticks[-1]]
    gap_keys = {t.key for t in gaps}
    sink_write(ts_store, [t for t in ticks if t.key not in gap_keys])
    ts_store.refresh_candles(*trading_day_bounds(day))
    assert ts_store.upsert(ticks_to_table(gaps)) == len(gaps)
    with ts_store.connect() as conn:
        for level in ("1m", "5m", "1h", "1d"):
            assert stored_candles(conn, ts_store.schema, level) == truth_candles(ticks, level), level


@pytest.mark.timescaledb
def test_retention_drops_old_chunks_and_candle_history_survives_refresh_policies(ts_store):
    now = datetime.now(UTC)
    old_day = (now - timedelta(days=40)).astimezone(KST).date()
    recent_day = (now - timedelta(days=2)).astimezone(KST).date()
    old, recent = day_ticks(old_day, ["005930"], 120, seed=8), day_ticks(recent_day, ["005930"], 120, seed=9)
    ts_store.upsert(ticks_to_table(old + recent))
    for day in (old_day, recent_day):
        ts_store.refresh_candles(*trading_day_bounds(day))
    with ts_store.connect() as conn:
        conn.execute(
            f"INSERT INTO {ts_store.schema}.metrics (ts, name, value) VALUES (%s, 'x', 1), (%s, 'x', 2)",
            (now - timedelta(days=33), now - timedelta(hours=1)),
        )
    run_job(ts_store, ts_store.jobs[("ticks", "policy_retention")])
    run_job(ts_store, ts_store.jobs[("metrics", "policy_retention")])
    assert ts_store.count_ticks(old_day) == 0
    assert ts_store.count_ticks(recent_day) == 120
    for level in ("1m", "5m", "1h", "1d"):  # the refresh policies must not reach the dropped days
        run_job(ts_store, ts_store.jobs[(f"candles_{level}", "policy_refresh_continuous_aggregate")])
    with ts_store.connect() as conn:
        for level in ("1m", "1h", "1d"):
            assert stored_candles(conn, ts_store.schema, level) == truth_candles(old + recent, level), level
        assert conn.execute(f"SELECT array_agg(value) FROM {ts_store.schema}.metrics").fetchone()[0] == [2.0]
    # a replay of the dropped day stores ticks again until the next retention run, and must not
    # change (double) the candles that outlived them
    assert ts_store.upsert(ticks_to_table(old)) == 120
    for level in ("1m", "5m", "1h", "1d"):
        run_job(ts_store, ts_store.jobs[(f"candles_{level}", "policy_refresh_continuous_aggregate")])
    with ts_store.connect() as conn:
        for level in ("1m", "1h", "1d"):
            assert stored_candles(conn, ts_store.schema, level) == truth_candles(old + recent, level), level


@pytest.mark.timescaledb
def test_compression_keeps_ticks_exact(ts_store):
    day = (datetime.now(UTC) - timedelta(days=12)).astimezone(KST).date()
    ticks = ticks_to_table(day_ticks(day, ["005930", "000660"], 200, seed=10))
    ts_store.upsert(ticks)
    run_job(ts_store, ts_store.jobs[("ticks", "policy_compression")])
    with ts_store.connect() as conn:
        compressed = conn.execute(
            "SELECT count(*) FILTER (WHERE is_compressed) FROM timescaledb_information.chunks "
            "WHERE hypertable_schema = %s AND hypertable_name = 'ticks'",
            (ts_store.schema,),
        ).fetchone()[0]
    assert compressed >= 1
    got = ts_store.read_ticks(*trading_day_bounds(day))
    assert got.to_pylist() == ticks.sort_by([("symbol", "ascending"), ("cum_volume", "ascending")]).to_pylist()
    assert ts_store.upsert(ticks) == 0  # a replay into a compressed chunk still adds nothing


@pytest.mark.timescaledb
def test_unsafe_policy_settings_are_refused_before_any_ddl(ts_settings):
    unsafe = HotStore(ts_settings.model_copy(update={"tick_retention_days": 5}))
    with pytest.raises(HotStoreError, match="tick_retention_days=5 must be greater"):
        unsafe.init()
    with psycopg.connect(ts_settings.pg_dsn) as conn:
        assert conn.execute("SELECT to_regnamespace(%s)", (ts_settings.pg_schema,)).fetchone()[0] is None
