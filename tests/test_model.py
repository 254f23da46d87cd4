"""Wire format v1 and validation: every refusal reason, exactly as the dead letter states it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tickvault.core.calendar import trading_date
from tickvault.core.wire import (
    KST,
    TICK_SCHEMA,
    InvalidTick,
    Tick,
    _decode_fast,
    _decode_slow,
    decode_entries,
    dedupe,
    parse_fields,
    ticks_to_table,
)

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def good(**over: str) -> dict[str, str]:
    fields = {
        "v": "1",
        "symbol": "005930",
        "ts": "2026-11-20T09:00:01+09:00",
        "price": "62700",
        "volume": "10",
        "cum_volume": "110",
        "side": "B",
        "source": "kis",
        "received_at": "2026-11-20T09:00:01.120+09:00",
    }
    fields.update(over)
    return {k: v for k, v in fields.items() if v is not None}


def test_round_trip_keeps_exact_values() -> None:
    tick = parse_fields(good(price="1234.5"), NOW)
    assert tick.price == Decimal("1234.5")
    assert tick.ts == datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC)
    assert parse_fields(tick.to_fields(), NOW) == tick


def test_optional_fields_may_be_absent_or_empty() -> None:
    tick = parse_fields(good(side="", received_at=None), NOW)
    assert tick.side is None and tick.received_at is None


def test_venue_absent_is_krx_and_the_nx_suffix_is_nextrade() -> None:
    plain = parse_fields(good(), NOW)
    assert (plain.venue, plain.symbol) == ("KRX", "005930")
    suffixed = parse_fields(good(symbol="005930_NX"), NOW)
    assert (suffixed.venue, suffixed.symbol) == ("NXT", "005930")
    explicit = parse_fields(good(venue="NXT"), NOW)
    assert (explicit.venue, explicit.symbol) == ("NXT", "005930")
    assert parse_fields(good(symbol="005930_NX", venue="NXT"), NOW).venue == "NXT"
    assert parse_fields(explicit.to_fields(), NOW) == explicit  # the round trip keeps the venue


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"symbol": "005930_AL"}, "smart-order-routing"),
        ({"venue": "SOR"}, "venue: want KRX or NXT"),
        ({"venue": "krx"}, "venue: want KRX or NXT"),
        ({"symbol": "005930_NX", "venue": "KRX"}, "contradicts"),
        ({"symbol": "005930_XX"}, "unknown suffix"),
    ],
)
def test_venue_refusals(override: dict, reason: str) -> None:
    with pytest.raises(InvalidTick, match=reason):
        parse_fields(good(**override), NOW)
    decoded = decode_entries([("1-0", good()), ("2-0", good(**override))], NOW)
    assert decoded.ids == ["1-0"] and reason.split(":")[0] in decoded.dead[0].reason


def test_same_second_same_cum_volume_on_two_venues_are_two_trades() -> None:
    krx, nxt = good(), good(venue="NXT")
    decoded = decode_entries([("1-0", krx), ("2-0", nxt)], NOW)
    assert decoded.table.column("venue").to_pylist() == ["KRX", "NXT"]
    assert dedupe(decoded.table).num_rows == 2


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"price": None}, "missing field(s): price"),
        ({"extra": "x"}, "unexpected field(s): extra"),
        ({"price": "abc"}, "price: not a decimal number"),
        ({"price": "NaN"}, "price: not a finite number"),
        ({"price": "-5"}, "price: must be > 0"),
        ({"price": "0"}, "price: must be > 0"),
        ({"price": "1.00001"}, "more than 4 decimal places"),
        ({"volume": "0"}, "volume: must be > 0"),
        ({"volume": "-3"}, "volume: not a non-negative integer"),
        ({"volume": "1.5"}, "volume: not a non-negative integer"),
        ({"cum_volume": "5"}, "cum_volume 5 < volume 10"),
        ({"v": "2"}, "unknown wire version '2'"),
        ({"v": None}, "missing field(s): v"),
        ({"ts": "yesterday"}, "ts: unparseable time"),
        ({"ts": "2026-11-20T09:00:01"}, "has no UTC offset"),
        ({"ts": "2026-11-22T09:00:01+09:00"}, "more than a day in the future"),
        ({"symbol": "5930"}, "symbol: want 6 chars"),
        ({"symbol": "005930 "}, "symbol: want 6 chars"),
        ({"side": "X"}, "side: want 'B', 'S' or empty"),
        ({"source": "KIS WS"}, "source: want a short lowercase name"),
        ({"received_at": "later"}, "received_at: unparseable time"),
    ],
)
def test_invalid_entries_are_refused_with_a_reason(override: dict[str, str | None], reason: str) -> None:
    with pytest.raises(InvalidTick) as err:
        parse_fields(good(**override), NOW)
    assert reason in str(err.value)


def test_decode_batch_separates_dead_letters_and_keeps_order() -> None:
    entries = [("1-0", good()), ("2-0", good(price="x")), ("3-0", good(cum_volume="120", ts="2026-11-20T09:00:02+09:00"))]
    batch = decode_entries(entries, NOW)
    assert batch.ids == ["1-0", "3-0"]
    assert batch.table.schema == TICK_SCHEMA
    assert batch.table.column("cum_volume").to_pylist() == [110, 120]
    assert [d.entry_id for d in batch.dead] == ["2-0"]
    assert batch.dead[0].fields["price"] == "x"


def test_dedupe_keeps_first_of_each_natural_key() -> None:
    t0 = datetime(2026, 11, 20, 9, 0, 1, tzinfo=KST)
    ticks = [
        Tick("005930", t0, Decimal(100), 1, 1, "B", "sim"),
        Tick("005930", t0, Decimal(100), 1, 2, "B", "sim"),  # same second, next trade
        Tick("005930", t0, Decimal(100), 1, 1, "B", "replay"),  # redelivery of the first
        Tick("000660", t0, Decimal(100), 1, 1, None, "sim"),
    ]
    out = dedupe(ticks_to_table(ticks))
    assert out.num_rows == 3
    assert out.column("source").to_pylist() == ["sim", "sim", "sim"]
    assert out.column("cum_volume").to_pylist() == [1, 2, 1]


def test_dedupe_of_empty_and_unique_tables_is_identity() -> None:
    empty = TICK_SCHEMA.empty_table()
    assert dedupe(empty).num_rows == 0
    t0 = datetime(2026, 11, 20, 9, 0, 1, tzinfo=KST)
    table = ticks_to_table([Tick("005930", t0 + timedelta(seconds=i), Decimal(1), 1, i + 1) for i in range(5)])
    assert dedupe(table).equals(table)


def test_kst_date_of_an_instant() -> None:
    assert str(trading_date(datetime(2026, 11, 19, 15, 0, tzinfo=UTC))) == "2026-11-20"
    assert str(trading_date(datetime(2026, 11, 19, 14, 59, 59, tzinfo=UTC))) == "2026-11-19"


def test_prices_are_exact_decimals_in_arrow() -> None:
    batch = decode_entries([("1-0", good(price="0.0001"))], NOW)
    assert pa.types.is_decimal(batch.table.schema.field("price").type)
    assert batch.table.column("price").to_pylist() == [Decimal("0.0001")]


# --- the vectorised decode path must agree with the per-entry rules exactly


field_values = st.one_of(
    st.sampled_from(["005930", "005930_NX", "5930", "005930\n", "1", "0", "-1", "10", "62700", "1234.5", "1E+3", " 5",
                     "0.00001", "2026-11-20T09:00:01+09:00", "2026-11-20T09:00:01Z", "2026-11-20T09:00:01.5+09:00",
                     "2026-11-20T09:00:01", "2099-01-01T00:00:00+09:00", "B", "S", "", "X", "sim", "KIS", "1"]),
    st.text(max_size=8),
)
entry = st.fixed_dictionaries(
    {"v": st.sampled_from(["1", "1", "1", "2"]), "symbol": field_values, "ts": field_values, "price": field_values,
     "volume": field_values, "cum_volume": field_values, "source": field_values},
    optional={"side": field_values, "received_at": field_values, "junk": field_values},
)


@hsettings(max_examples=300, deadline=None)
@given(st.lists(entry, min_size=1, max_size=5))
def test_fast_and_per_entry_decoding_agree(fields_list: list[dict[str, str]]) -> None:
    entries = [(f"{i}-0", f) for i, f in enumerate(fields_list)]
    slow = _decode_slow(entries, NOW)
    fast = _decode_fast(entries, NOW)
    if fast is not None:  # the fast path only ever accepts whole batches the slow path accepts
        assert not slow.dead
        assert fast.ids == slow.ids
        assert fast.table.equals(slow.table)


def test_a_clean_batch_takes_the_fast_path() -> None:
    entries = [(f"{i}-0", good(cum_volume=str(10 + i), ts=f"2026-11-20T09:00:{i:02d}+09:00")) for i in range(50)]
    fast = _decode_fast(entries, NOW)
    assert fast is not None and fast.table.num_rows == 50
    assert fast.table.equals(_decode_slow(entries, NOW).table)
