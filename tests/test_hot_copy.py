"""The numpy binary-COPY encoder, checked by PostgreSQL itself: whatever Arrow layout a
batch has (slices, several chunks, nulls, non-ASCII text), the rows read back are equal."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from factories import day_ticks
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.errors import InvalidTick
from tickvault.core.wire import KST, TICK_SCHEMA, Tick, ticks_to_table
from tickvault.stores.contract import conform
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.copy import HEADER, TRAILER, encode_binary_copy

DAY = date(2026, 11, 20)


def test_empty_batch_is_header_and_trailer():
    assert encode_binary_copy(TICK_SCHEMA.empty_table()) == HEADER + TRAILER


def test_sliced_and_chunked_batches_round_trip(settings):
    store = HotStore(settings)
    store.init()
    ticks = day_ticks(DAY, ["005930", "000660"], 400, seed=41)
    whole = ticks_to_table(ticks)
    # slices with non-zero offsets, stitched into a multi-chunk table
    pieces = [whole.slice(0, 123), whole.slice(123, 1), whole.slice(124, 400), whole.slice(524, 276)]
    chunked = pa.concat_tables(pieces)
    assert chunked.column("price").num_chunks == 4
    assert store.upsert(chunked) == 800
    got = store.read_ticks(*trading_day_bounds(DAY))
    assert got.to_pylist() == whole.sort_by([("symbol", "ascending"), ("cum_volume", "ascending")]).to_pylist()


def test_text_nulls_and_extremes_round_trip(settings):
    store = HotStore(settings)
    store.init()
    base = datetime(2026, 11, 20, 9, 0, tzinfo=KST)
    ticks = [
        Tick("005930", base, Decimal("0.0001"), 1, 1, None, "kis", None),
        Tick("005930", base, Decimal("99999999999999.9999"), 9_000_000_000_000_000, 9_000_000_000_000_001, "S", "키움", base),
        Tick("005930_NX", base + timedelta(hours=10), Decimal("62700"), 3, 3, "B", "", base - timedelta(days=400)),
    ]
    batch = ticks_to_table(ticks)
    assert store.write(batch) == 3  # the encoder's extremes, past validation (upsert would refuse the odd text)
    got = store.read_ticks(*trading_day_bounds(DAY))
    assert got.to_pylist() == batch.to_pylist()


def test_required_nulls_are_refused_before_any_write():
    batch = ticks_to_table(day_ticks(DAY, ["005930"], 3))
    price_type = TICK_SCHEMA.field("price").type
    bad = batch.set_column(batch.schema.get_field_index("price"), pa.field("price", price_type), pa.array([Decimal(1), None, Decimal(2)], price_type))
    with pytest.raises(InvalidTick, match=r"1 null.*price"):
        conform(bad)


def test_upsert_in_slices_counts_every_row_once(settings, monkeypatch):
    import tickvault.stores.hot.store as store_module

    monkeypatch.setattr(store_module, "UPSERT_SLICE_ROWS", 70)
    store = HotStore(settings)
    store.init()
    ticks = ticks_to_table(day_ticks(DAY, ["005930", "000660", "035420"], 100, seed=42))
    assert store.upsert(ticks) == 300
    assert store.upsert(ticks) == 0
    assert store.count_ticks(DAY) == 300


@pytest.mark.parametrize("source", ["null", "nan", "none", "na", "nat", "n.a", "1.nan"])
def test_sources_that_spell_null_read_back_as_text_and_copy_to_the_lake(settings, source):
    """Issue 13.10: a source that a text reader takes for NULL stays that text through the hot
    read (export's path) and a hot -> cold copy (reconcile's)."""
    from tickvault.services.sync.reconcile import reconcile
    from tickvault.stores.lake import Lake

    store = HotStore(settings)
    store.init()
    batch = ticks_to_table(day_ticks(DAY, ["005930"], 5, source=source))
    assert store.upsert(batch) == 5
    got = store.read_ticks(*trading_day_bounds(DAY))
    assert got.column("source").to_pylist() == [source] * 5
    store.close()
    Lake(settings).init()
    report = reconcile(settings, DAY, repair=True)
    assert report.added_to_cold == 5 and report.consistent
    lake = Lake(settings)
    assert lake.read_ticks(*trading_day_bounds(DAY)).column("source").to_pylist() == [source] * 5
    lake.close()
