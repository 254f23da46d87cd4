"""tickvault.services.query over real stores: hot == cold == independent truth, auto stitching across
the retention boundary, as_of on the lake, ticks, fill, conversions."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest
from factories import SESSION_SYMBOLS as SYMBOLS, SESSIONS_END as END, SESSIONS_START as START, session_ticks
from truth import as_rows, truth_bars

from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake
from tickvault.core.wire import KST, UTC, Tick, ticks_to_table
from tickvault.services.query import QueryEngine, QueryError, Segment, resolve_range, to_pandas, to_polars
from tickvault.core.timeframe import parse_timeframe

ACCEPTANCE_TFS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "1d")
# "now" for the engine: 2026-01-06 12:00 KST with 10 days of hot retention -> the hot store keeps
# 2025-12-27.., the engine starts it at the next trading date with data: 2025-12-30.
NOW = datetime(2026, 1, 6, 12, tzinfo=KST)
RETENTION_DAYS = 10
HOT_FROM = date(2025, 12, 30)


@pytest.fixture(scope="module")
def truth() -> list[Tick]:
    return session_ticks(seed=11)


@pytest.fixture
def both(settings, truth):
    """Every truth tick in both stores."""
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    table = ticks_to_table(truth)
    assert hot.upsert(table) == len(truth)
    assert lake.upsert(table) == len(truth)
    yield hot, lake
    lake.close()
    hot.close()


@pytest.fixture
def retained(settings, truth):
    """The lake has everything but lags: the last afternoon is missing. The hot store holds
    only what its retention keeps, plus a leftover partial older date retention has not
    dropped yet (which auto must not use)."""
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    lag_from = datetime(2026, 1, 5, 13, tzinfo=KST)
    leftover = (datetime(2025, 11, 13, 14, tzinfo=KST), datetime(2025, 11, 14, tzinfo=KST))
    lake.upsert(ticks_to_table([t for t in truth if t.ts < lag_from]))
    hot.upsert(ticks_to_table([t for t in truth if t.ts.astimezone(KST).date() >= HOT_FROM or leftover[0] <= t.ts < leftover[1]]))
    s = settings.model_copy(update={"tick_retention_days": RETENTION_DAYS})
    engine = QueryEngine(s, now=NOW)
    yield engine
    engine.close()
    lake.close()
    hot.close()


def test_hot_and_cold_identical_and_equal_to_truth(settings, both, truth) -> None:
    with QueryEngine(settings) as engine:
        for tf in ACCEPTANCE_TFS + ("1w", "1mo"):
            for session in ("regular", "all"):
                hot = engine.candles(None, tf, START, END, source="hot", session=session)
                cold = engine.candles(None, tf, START, END, source="cold", session=session)
                assert hot.equals(cold), (tf, session)
                assert as_rows(cold) == truth_bars(truth, tf, session), (tf, session)


def test_auto_plan_splits_at_the_first_full_hot_date(retained) -> None:
    lo, hi = resolve_range("2025-11-12", "2026-01-05")
    assert retained.plan("auto", lo, hi) == [
        Segment("cold", lo, datetime(2025, 12, 30, tzinfo=KST)),
        Segment("hot", datetime(2025, 12, 30, tzinfo=KST), hi),
    ]
    tf_week = parse_timeframe("1w")
    # a week bar must come whole from one store: split moves on to the next week's first date
    assert retained.plan("auto", lo, hi, tf_week)[1].start == datetime(2026, 1, 5, tzinfo=KST)
    assert retained.plan("auto", lo, datetime(2025, 12, 1, tzinfo=KST)) == [Segment("cold", lo, datetime(2025, 12, 1, tzinfo=KST))]


def test_auto_across_the_retention_boundary_returns_each_bar_once(retained, truth) -> None:
    for tf in ACCEPTANCE_TFS + ("1w", "1mo"):
        got = retained.candles(None, tf, "2025-11-12", "2026-01-05", source="auto", session="all")
        keys = Counter(zip(got.column("symbol").to_pylist(), got.column("bucket").to_pylist()))
        assert max(keys.values()) == 1, tf
        assert as_rows(got) == truth_bars(truth, tf, "all"), tf


def test_auto_ticks_are_stitched_without_overlap_or_gap(retained, truth) -> None:
    got = retained.ticks(list(SYMBOLS), "2025-11-12", "2026-01-05")
    keys = list(zip(got.column("symbol").to_pylist(), got.column("ts").to_pylist(), got.column("cum_volume").to_pylist()))
    assert len(keys) == len(set(keys)) == len(truth)
    assert set(keys) == {(t.symbol, t.ts, t.cum_volume) for t in truth}
    symbols = got.column("symbol").to_pylist()
    assert symbols == sorted(symbols)
    one = [k for k in keys if k[0] == SYMBOLS[0]]
    assert [k[1].astimezone(KST).date() for k in one] == sorted(k[1].astimezone(KST).date() for k in one)


def test_as_of_returns_the_pre_upsert_answer(settings, both, truth) -> None:
    hot, lake = both
    pinned = lake.snapshot_id()
    pinned_time = datetime.now(UTC)
    day = date(2025, 11, 12)
    with QueryEngine(settings) as engine:
        before = engine.candles("005930", "1d", day, day, source="cold")
        last_cum = max(t.cum_volume for t in truth if t.symbol == "005930" and t.ts.astimezone(KST).date() == day)
        late = Tick("005930", datetime(2025, 11, 12, 15, 30, tzinfo=KST).astimezone(UTC), Decimal(1), 1000, last_cum + 1000, None, "recovery")
        assert lake.upsert(ticks_to_table([late])) == 1
        after = engine.candles("005930", "1d", day, day, source="cold")
        assert after.column("volume")[0].as_py() == before.column("volume")[0].as_py() + 1000
        assert engine.candles("005930", "1d", day, day, source="cold", as_of=pinned).equals(before)
        assert engine.candles("005930", "1d", day, day, as_of=str(pinned)).equals(before)  # auto + as_of = lake
        assert engine.candles("005930", "1d", day, day, as_of=pinned_time).equals(before)
        all_before = engine.candles("005930", "1d", day, day, source="cold", session="all", as_of=pinned)
        assert engine.ticks("005930", day, day, source="cold", as_of=pinned).num_rows == all_before.column("trade_count")[0].as_py()
        assert engine.ticks("005930", day, day, source="cold").num_rows == all_before.column("trade_count")[0].as_py() + 1
        with pytest.raises(QueryError, match="hot store has no snapshots"):
            engine.candles("005930", "1d", day, day, source="hot", as_of=pinned)


def test_fill_through_the_engine(settings, both) -> None:
    with QueryEngine(settings, now=NOW) as engine:
        plain = engine.candles("069500", "5m", "2026-01-02", "2026-01-02", source="cold")
        filled = engine.candles("069500", "5m", "2026-01-02", "2026-01-02", source="hot", fill=True)
    buckets = [b.astimezone(KST).time() for b in filled.column("bucket").to_pylist()]
    assert buckets[0] == time(10) and buckets[-1] == time(15, 30)  # 10:00 open on the first trading day
    assert len(buckets) == len(set(buckets)) == (5 * 60 + 30) // 5 + 1
    assert set(plain.column("bucket").to_pylist()) <= set(filled.column("bucket").to_pylist())


def test_bad_questions_get_clear_errors(settings) -> None:
    with QueryEngine(settings) as engine:
        with pytest.raises(QueryError, match="not a KRX symbol"):
            engine.candles("SAMSUNG", "1m", "2026-01-02", "2026-01-02", source="hot")
        with pytest.raises(QueryError, match="unknown source"):
            engine.candles("005930", "1m", "2026-01-02", "2026-01-02", source="warm")
        with pytest.raises(QueryError, match="empty range"):
            engine.candles("005930", "1m", "2026-01-05", "2026-01-02", source="hot")
        with pytest.raises(ValueError, match="unknown timeframe"):
            engine.candles("005930", "7x", "2026-01-02", "2026-01-02", source="hot")
        with pytest.raises(QueryError, match="no lake"):
            engine.candles("005930", "1m", "2026-01-02", "2026-01-02", source="cold")


def test_ranges_dates_inclusive_instants_exclusive() -> None:
    assert resolve_range("2026-01-02", "2026-01-02") == (datetime(2026, 1, 2, tzinfo=KST), datetime(2026, 1, 3, tzinfo=KST))
    assert resolve_range("2026-01-02T10:00", "2026-01-02T11:00:00+09:00") == (
        datetime(2026, 1, 2, 10, tzinfo=KST), datetime(2026, 1, 2, 11, tzinfo=KST))


def test_pandas_and_polars_helpers(settings, both) -> None:
    with QueryEngine(settings) as engine:
        table = engine.candles(None, "1h", "2026-01-05", "2026-01-05", source="cold")
    frame = to_pandas(table)
    assert str(frame["bucket"].dt.tz) == "Asia/Seoul" and frame["bucket"].iloc[0].hour == 9
    assert frame["close"].dtype == "float64"
    exact = to_pandas(table, exact=True)
    assert exact["turnover"].iloc[0] == table.column("turnover")[0].as_py()
    pl_frame = to_polars(table)
    assert pl_frame.height == table.num_rows and str(pl_frame.schema["close"]) == "Float64"
    assert isinstance(table, pa.Table) and sorted(set(frame["symbol"])) == list(SYMBOLS)


def test_hot_candle_tables_agree_with_query(settings, truth) -> None:
    """The hot store's maintained candles_1m/5m/1h/1d (what Grafana reads) hold the same bars as
    tickvault.services.query computes from ticks with session="all" — one definition of a bar."""
    settings = settings.model_copy(update={"tick_retention_days": 3650})  # the test dates are in the past
    hot = HotStore(settings)
    hot.init()
    hot.upsert(ticks_to_table(truth))
    with QueryEngine(settings) as engine, hot.connect(autocommit=True) as conn:
        for level in ("1m", "5m", "1h", "1d"):
            mine = as_rows(engine.candles(None, level, START, END, source="hot", session="all"))
            rows = conn.execute(
                f"SELECT bucket, symbol, open, high, low, close, volume, trade_count, turnover, vwap "
                f"FROM {settings.pg_schema}.candles_{level} ORDER BY symbol COLLATE \"C\", bucket"
            ).fetchall()
            assert [tuple(r) for r in rows] == mine, level


def test_hot_source_warns_when_the_range_predates_retention(retained, caplog) -> None:
    lo, hi = resolve_range("2025-11-12", "2025-11-13")
    with caplog.at_level("WARNING", logger="tickvault.services.query"):
        assert retained.plan("hot", lo, hi) == [Segment("hot", lo, hi)]
    assert "keeps ticks only after 2025-12-27" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tickvault.services.query"):
        retained.plan("hot", *resolve_range("2026-01-02", "2026-01-05"))
    assert caplog.text == ""
