"""The timestamp domain (issue 13.2): validation accepts only instants every store can write
and place, and one function decides a tick's trading date in both engines.

Before the bound, a tick of 1987 (Asia/Seoul's summer time) or 1900 (+08:30) got a hot
partition that did not contain it and a lake dedup window that missed its stored trade date:
writing it twice left three copies in the lake; year 1 overflowed the lake write.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tickvault.core.calendar import trading_date, trading_dates, trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.wire import MAX_FUTURE, NATURAL_KEY, TS_MAX, TS_MIN, Tick, decode_entries, dedupe, ticks_to_table
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
OFFSETS = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((9, 0), (8, 30), (0, 0), (-5, 0), (14, 0), (-12, 0))]
_cum = itertools.count(1)


def entry(ts: str, cum_volume: int, received_at: str = "") -> dict[str, str]:
    fields = {"v": "1", "symbol": "005930", "ts": ts, "price": "100", "volume": "1", "cum_volume": str(cum_volume), "source": "kis"}
    if received_at:
        fields["received_at"] = received_at
    return fields


@pytest.mark.parametrize("ts", [
    "0001-01-01T00:00:00+09:00",  # overflowed the lake write
    "1900-06-01T10:00:00+09:00",  # Asia/Seoul was LMT / +08:30 then
    "1987-07-01T10:00:00+09:00",  # Asia/Seoul summer time (UTC+10)
    "1999-12-31T23:59:59.999999+00:00",
    "2100-01-01T00:00:00+00:00",
])
def test_times_outside_the_range_are_refused(ts: str) -> None:
    for received_at in ("", ts):
        fields = entry("2026-11-20T09:00:00+09:00", 1, received_at) if received_at else entry(ts, 1)
        batch = decode_entries([("1-0", fields)], now=datetime(2200, 1, 1, tzinfo=UTC))
        assert batch.table.num_rows == 0
        assert "outside the accepted range 2000-01-01 .. 2100-01-01 UTC" in batch.dead[0].reason


def test_trading_date_is_utc_plus_nine_in_both_engines(settings: Settings) -> None:
    """core.calendar decides; the lake's stored trade_date (its SQL arithmetic) agrees."""
    edges = [TS_MIN, datetime(2000, 1, 1, 14, 59, 59, 999999, tzinfo=UTC), datetime(2000, 1, 1, 15, tzinfo=UTC),
             datetime(2099, 12, 31, 14, 59, 59, tzinfo=UTC), datetime(2099, 12, 31, 15, tzinfo=UTC)]
    assert [trading_date(t) for t in edges] == [date(2000, 1, 1), date(2000, 1, 1), date(2000, 1, 2), date(2099, 12, 31), date(2100, 1, 1)]
    assert trading_day_bounds(date(2000, 1, 2))[0] == datetime(2000, 1, 1, 15, tzinfo=UTC)
    assert trading_dates(pa.array(edges, pa.timestamp("us", tz="UTC"))) == {trading_date(t) for t in edges}
    fields = [entry(t.isoformat(), i + 1) for i, t in enumerate(edges)]
    batch = decode_entries([(f"{i}-0", f) for i, f in enumerate(fields)], now=datetime(2200, 1, 1, tzinfo=UTC))
    assert batch.table.num_rows == len(edges)
    expected = {day: sum(trading_date(t) == day for t in edges) for day in trading_dates(batch.table.column("ts"))}
    for store in (HotStore(settings), Lake(settings)):
        store.init()
        store.write(batch.table)
        assert {day: store.count_ticks(day) for day in expected} == expected, store.name  # lake: by its stored trade_date
        store.close()


def _instants() -> st.SearchStrategy[str]:
    """ISO-8601 text over the whole domain datetime can spell, weighted to the edges that broke."""
    edges = st.sampled_from([datetime(1999, 12, 31, 12), datetime(2000, 1, 1, 8, 30), datetime(2099, 12, 31, 20),
                             datetime(2100, 1, 1, 9), datetime(1987, 7, 1, 9), datetime(1955, 6, 1, 9), datetime(1900, 1, 1, 9)])
    near = st.datetimes(min_value=datetime(1999, 12, 30), max_value=datetime(2000, 1, 3))
    recent = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 11, 22))
    anywhere = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
    moment = st.one_of(edges, near, recent, anywhere)
    return st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), moment, st.sampled_from(OFFSETS))


def _accepted(text: str) -> bool:
    value = datetime.fromisoformat(text)
    return TS_MIN <= value < TS_MAX and value - NOW <= MAX_FUTURE


@pytest.fixture
def stores(settings: Settings):
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    yield hot, lake
    hot.close()
    lake.close()


@hsettings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_instants(), st.one_of(st.just(""), _instants())), min_size=1, max_size=6))
def test_every_accepted_entry_is_stored_exactly_once_in_both_stores(stores, times: list[tuple[str, str]]) -> None:
    hot, lake = stores
    entries = [(f"{i + 1}-0", entry(ts, next(_cum), received)) for i, (ts, received) in enumerate(times)]
    decoded = decode_entries(entries, now=NOW)
    expected_ok = {eid for eid, (ts, received) in zip((e[0] for e in entries), times)
                   if _accepted(ts) and (not received or TS_MIN <= datetime.fromisoformat(received) < TS_MAX)}
    assert set(decoded.ids) == expected_ok
    assert {d.entry_id for d in decoded.dead} == {eid for eid, _ in entries} - expected_ok
    if not expected_ok:
        return
    batch = dedupe(decoded.table)
    for store in (hot, lake):  # delivered, then redelivered whole and as a mixed second batch
        store.write(batch)
        store.write(batch)
        store.write(pa.concat_tables([batch.slice(0, 1), batch]).slice(0, batch.num_rows))
    low, high = pc.min_max(batch.column("ts")).values()
    keys = batch.select(list(NATURAL_KEY)).to_pylist()
    for store in (hot, lake):
        stored = store.read_ticks(low.as_py(), high.as_py() + timedelta(microseconds=1), ["005930"]).select(list(NATURAL_KEY))
        counts = {tuple(k.values()): 0 for k in keys}
        for row in stored.to_pylist():
            if tuple(row.values()) in counts:
                counts[tuple(row.values())] += 1
        assert set(counts.values()) == {1}, (store.name, counts)
        for day in trading_dates(batch.column("ts")):
            assert store.count_ticks(day) >= 1, (store.name, day)


def test_both_engines_place_a_tick_of_seouls_summer_time_on_one_date(settings: Settings) -> None:
    """Even past validation (a direct ``write``), the hot partition and the lake's dedup window use
    the same date as the lake's stored trade_date: written twice, the tick is stored once."""
    fields = entry("1987-07-02T00:30:00+10:00", 1)  # Asia/Seoul's summer time: 23:30 on 07-01 by the +9 rule
    table = decode_entries([("1-0", fields)], now=NOW).table
    assert table.num_rows == 0  # refused at the wire ...
    ts = datetime(1987, 7, 1, 14, 30, tzinfo=UTC)
    batch = ticks_to_table([Tick("005930", ts, Decimal(100), 1, 1, None, "kis")])
    for store in (HotStore(settings), Lake(settings)):  # ... and placed consistently when written directly
        store.init()
        assert store.write(batch) == 1
        assert store.write(batch) == 0
        assert store.count_ticks(date(1987, 7, 1)) == 1, store.name
        store.close()
