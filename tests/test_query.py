"""tickvault.Vault over real stores: hot == cold == independent truth, auto stitching across
the retention boundary, as_of on the lake, ticks, fill, conversions."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest

from factories import SESSION_SYMBOLS as SYMBOLS
from factories import SESSIONS_END as END
from factories import SESSIONS_START as START
from factories import session_ticks
from tickvault.core.errors import QueryError, StoreNotInitialized
from tickvault.core.timeframe import parse_timeframe
from tickvault.core.wire import KST, UTC, Tick, ticks_to_table
from tickvault.services.api import Segment, Vault, resolve_range
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake
from truth import as_rows, truth_bars

ACCEPTANCE_TFS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "1d")
# "now" for the vault: 2026-01-06 12:00 KST with 10 days of hot retention -> the hot store keeps
# 2025-12-27.., the vault starts it at the next trading date with data: 2025-12-30.
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
    vault = Vault(s, clock=lambda: NOW)
    yield vault
    vault.close()
    lake.close()
    hot.close()


def test_hot_and_cold_identical_and_equal_to_truth(settings, both, truth) -> None:
    with Vault(settings) as vault:
        for tf in ACCEPTANCE_TFS + ("1w", "1mo"):
            for session in ("regular", "all"):
                hot = vault.candles(None, tf, START, END, source="hot", session=session)
                cold = vault.candles(None, tf, START, END, source="cold", session=session)
                assert hot.equals(cold), (tf, session)
                assert as_rows(cold) == truth_bars(truth, tf, session), (tf, session)


def test_auto_plan_splits_at_the_first_full_hot_date(retained) -> None:
    lo, hi = resolve_range("2025-11-12", "2026-01-05")
    assert retained.plan(lo, hi) == [
        Segment("cold", lo, datetime(2025, 12, 30, tzinfo=KST)),
        Segment("hot", datetime(2025, 12, 30, tzinfo=KST), hi),
    ]
    tf_week = parse_timeframe("1w")
    # a week bar must come whole from one store: split moves on to the next week's first date
    assert retained.plan(lo, hi, tf=tf_week)[1].start == datetime(2026, 1, 5, tzinfo=KST)
    assert retained.plan(lo, datetime(2025, 12, 1, tzinfo=KST)) == [Segment("cold", lo, datetime(2025, 12, 1, tzinfo=KST))]


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
    _hot, lake = both
    pinned = lake.snapshot_id()
    pinned_time = datetime.now(UTC)
    day = date(2025, 11, 12)
    with Vault(settings) as vault:
        before = vault.candles("005930", "1d", day, day, source="cold")
        last_cum = max(t.cum_volume for t in truth if t.symbol == "005930" and t.ts.astimezone(KST).date() == day)
        late = Tick("005930", datetime(2025, 11, 12, 15, 30, tzinfo=KST).astimezone(UTC), Decimal(1), 1000, last_cum + 1000, None, "recovery")
        assert lake.upsert(ticks_to_table([late])) == 1
        after = vault.candles("005930", "1d", day, day, source="cold")
        assert after.column("volume")[0].as_py() == before.column("volume")[0].as_py() + 1000
        assert vault.candles("005930", "1d", day, day, source="cold", as_of=pinned).equals(before)
        assert vault.candles("005930", "1d", day, day, as_of=str(pinned)).equals(before)  # auto + as_of = lake
        assert vault.candles("005930", "1d", day, day, as_of=pinned_time).equals(before)
        all_before = vault.candles("005930", "1d", day, day, source="cold", session="all", as_of=pinned)
        assert vault.ticks("005930", day, day, source="cold", as_of=pinned).num_rows == all_before.column("trade_count")[0].as_py()
        assert vault.ticks("005930", day, day, source="cold").num_rows == all_before.column("trade_count")[0].as_py() + 1
        with pytest.raises(QueryError, match="hot store has no snapshots"):
            vault.candles("005930", "1d", day, day, source="hot", as_of=pinned)


def test_fill_through_the_engine(settings, both) -> None:
    with Vault(settings, clock=lambda: NOW) as vault:
        plain = vault.candles("069500", "5m", "2026-01-02", "2026-01-02", source="cold")
        filled = vault.candles("069500", "5m", "2026-01-02", "2026-01-02", source="hot", fill=True)
    buckets = [b.astimezone(KST).time() for b in filled.column("bucket").to_pylist()]
    assert buckets[0] == time(10) and buckets[-1] == time(15, 30)  # 10:00 open on the first trading day
    assert len(buckets) == len(set(buckets)) == (5 * 60 + 30) // 5 + 1
    assert set(plain.column("bucket").to_pylist()) <= set(filled.column("bucket").to_pylist())


def test_bad_questions_get_clear_errors(settings) -> None:
    with Vault(settings) as vault:
        with pytest.raises(QueryError, match="not a KRX symbol"):
            vault.candles("SAMSUNG", "1m", "2026-01-02", "2026-01-02", source="hot")
        with pytest.raises(QueryError, match="unknown source"):
            vault.candles("005930", "1m", "2026-01-02", "2026-01-02", source="warm")
        with pytest.raises(QueryError, match="empty range"):
            vault.candles("005930", "1m", "2026-01-05", "2026-01-02", source="hot")
        with pytest.raises(QueryError, match="unknown timeframe"):
            vault.candles("005930", "7x", "2026-01-02", "2026-01-02", source="hot")
        with pytest.raises(StoreNotInitialized, match="no lake"):
            vault.candles("005930", "1m", "2026-01-02", "2026-01-02", source="cold")


def test_ranges_dates_inclusive_instants_exclusive() -> None:
    assert resolve_range("2026-01-02", "2026-01-02") == (datetime(2026, 1, 2, tzinfo=KST), datetime(2026, 1, 3, tzinfo=KST))
    assert resolve_range("2026-01-02T10:00", "2026-01-02T11:00:00+09:00") == (
        datetime(2026, 1, 2, 10, tzinfo=KST), datetime(2026, 1, 2, 11, tzinfo=KST))


def test_pandas_and_polars_output(settings, both) -> None:
    with Vault(settings) as vault:
        table = vault.candles(None, "1h", "2026-01-05", "2026-01-05", source="cold")
        frame = vault.candles(None, "1h", "2026-01-05", "2026-01-05", source="cold", output="pandas")
        exact = vault.candles(list(SYMBOLS), "1h", "2026-01-05", "2026-01-05", source="cold", output="pandas", exact=True)
        pl_frame = vault.candles(None, "1h", "2026-01-05", "2026-01-05", source="cold", output="polars")
    assert frame.index.names == ["symbol", "bucket"]
    bucket = frame.index.get_level_values("bucket")
    assert str(bucket.tz) == "Asia/Seoul" and bucket[0].hour == 9
    assert frame["close"].dtype == "float64"
    assert exact["turnover"].iloc[0] == table.column("turnover")[0].as_py()
    assert pl_frame.height == table.num_rows and str(pl_frame.schema["close"]) == "Float64"
    assert isinstance(table, pa.Table) and sorted(set(frame.index.get_level_values("symbol"))) == list(SYMBOLS)


def test_hot_candle_tables_agree_with_query(settings, truth) -> None:
    """The hot store's maintained candles_1m/5m/1h/1d (what Grafana reads) hold the same bars as
    tickvault.Vault computes from ticks with session="all" — one definition of a bar."""
    settings = settings.model_copy(update={"tick_retention_days": 3650})  # the test dates are in the past
    hot = HotStore(settings)
    hot.init()
    hot.upsert(ticks_to_table(truth))
    with Vault(settings) as vault, hot.connect(autocommit=True) as conn:
        for level in ("1m", "5m", "1h", "1d"):
            mine = as_rows(vault.candles(None, level, START, END, source="hot", session="all"))
            rows = conn.execute(
                f"SELECT bucket, symbol, open, high, low, close, volume, trade_count, turnover, vwap "
                f"FROM {settings.pg_schema}.candles_{level} ORDER BY symbol COLLATE \"C\", bucket"
            ).fetchall()
            assert [tuple(r) for r in rows] == mine, level


def test_hot_source_warns_when_the_range_predates_retention(retained, caplog) -> None:
    lo, hi = resolve_range("2025-11-12", "2025-11-13")
    with caplog.at_level("WARNING", logger="tickvault.services.api"):
        assert retained.plan(lo, hi, source="hot") == [Segment("hot", lo, hi)]
    assert "keeps ticks only after 2025-12-27" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tickvault.services.api"):
        retained.plan(*resolve_range("2026-01-02", "2026-01-05"), source="hot")
    assert caplog.text == ""
