"""The store contract: the hot store and the lake implement ``TickStore`` directly and answer
every question the same way for the same ticks (real PostgreSQL and a real DuckLake lake)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import timedelta

import pyarrow as pa
import pytest

from factories import DAY, interleaved_ticks
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.errors import InvalidTick, StoreNotInitialized
from tickvault.stores.contract import StreamPosition, TickStore
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


@pytest.fixture(params=["hot", "cold"])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TickStore]:
    made: TickStore = HotStore(settings) if request.param == "hot" else Lake(settings)
    made.init()
    yield made
    made.close()


def test_both_stores_implement_the_protocol_with_its_signatures() -> None:
    for cls in (HotStore, Lake):
        for name, member in inspect.getmembers(TickStore, inspect.isfunction):
            if name.startswith("_"):
                continue
            mine = getattr(cls, name)
            wanted = list(inspect.signature(member).parameters)
            got = list(inspect.signature(mine).parameters)
            assert got[: len(wanted)] == wanted, f"{cls.__name__}.{name}{inspect.signature(mine)} vs protocol {wanted}"


def test_write_with_position_is_idempotent_and_keeps_the_highest_id(store: TickStore, settings: Settings) -> None:
    batch = interleaved_ticks(90)
    assert store.write(batch, StreamPosition(settings.stream, "g", "1700000000000-5")) == 90
    assert store.write(batch, StreamPosition(settings.stream, "g", "999-9")) == 0  # a redelivered, older batch
    assert store.checkpoint(settings.stream, "g") == "1700000000000-5"
    assert store.write(interleaved_ticks(30, start_cum=1000), StreamPosition(settings.stream, "g", "1700000000000-12")) == 30
    assert store.checkpoint(settings.stream, "g") == "1700000000000-12"
    assert store.checkpoint(settings.stream, "other") is None
    assert store.count_ticks(DAY) == 120


def test_upsert_conforms_and_deduplicates(store: TickStore) -> None:
    batch = interleaved_ticks(60)
    doubled = pa.concat_tables([batch, batch.slice(0, 20)])
    assert store.upsert(doubled) == 60
    assert store.upsert(doubled) == 0
    with pytest.raises(InvalidTick, match="lacks column"):
        store.upsert(batch.drop_columns(["volume"]))
    start, end = trading_day_bounds(DAY)
    stored = store.read_ticks(start, end)
    assert stored.num_rows == 60
    assert stored.column("symbol").to_pylist() == sorted(stored.column("symbol").to_pylist())


def test_the_named_questions(store: TickStore) -> None:
    batch = interleaved_ticks(300)
    store.upsert(batch)
    start, end = trading_day_bounds(DAY)
    assert store.symbols_of_day(DAY) == [("KRX", "000660"), ("KRX", "005930"), ("KRX", "035420")]
    assert store.symbols_of_day(DAY + timedelta(days=1)) == []
    assert store.has_ticks(start, end) and not store.has_ticks(end, end + timedelta(days=1))
    bounds = store.bounds(start, end)
    assert bounds.ticks == 300 and bounds.first_ts is not None and bounds.last_ts is not None
    minutes = store.minute_fingerprints(start, end)
    assert sum(m.ticks for m in minutes) == 300 and all(m.breaks == 0 and m.duplicates == 0 for m in minutes)
    breaks = store.breaks(start, end)
    assert [b.symbol for b in breaks if b.is_last] == ["000660", "005930", "035420"] and all(b.missing == 0 for b in breaks)
    assert store.duplicate_keys(start, end) == []
    bars = store.candles("15m", start, end, ["005930"])
    assert set(bars.column("symbol").to_pylist()) == {"005930"} and sum(bars.column("trade_count").to_pylist()) == 100


def test_both_stores_give_identical_answers(settings: Settings) -> None:
    batch = interleaved_ticks(500)
    start, end = trading_day_bounds(DAY)
    with HotStore(settings) as hot, Lake(settings) as lake:
        hot.init()
        lake.init()
        hot.upsert(batch)
        lake.upsert(batch)
        assert hot.read_ticks(start, end).equals(lake.read_ticks(start, end))
        assert hot.minute_fingerprints(start, end) == lake.minute_fingerprints(start, end)
        assert hot.breaks(start, end) == lake.breaks(start, end)
        assert hot.bounds(start, end) == lake.bounds(start, end)
        for tf in ("1m", "1h", "1d"):
            assert hot.candles(tf, start, end, session="all").equals(lake.candles(tf, start, end, session="all"))


def test_reading_a_missing_lake_refuses_instead_of_creating_it(settings: Settings) -> None:
    lake = Lake(settings)
    start, end = trading_day_bounds(DAY)
    for call in (lambda: lake.read_ticks(start, end), lambda: lake.count_ticks(DAY), lambda: lake.symbols_of_day(DAY),
                 lambda: lake.minute_fingerprints(start, end), lambda: lake.checkpoint("s", "g")):
        with pytest.raises(StoreNotInitialized, match="TICKVAULT_LAKE_DIR"):
            call()
    assert not settings.lake_dir.exists()


def two_venue_ticks() -> pa.Table:
    """KRX and NXT trades of one symbol, each venue with its own cumulative volume, several
    of them sharing (ts, cum_volume) across venues — different trades that only the venue tells apart."""
    krx = interleaved_ticks(120, symbols=("005930",))
    nxt = interleaved_ticks(90, symbols=("005930",))
    nxt = nxt.set_column(nxt.schema.get_field_index("venue"), nxt.schema.field("venue"), pa.array(["NXT"] * nxt.num_rows))
    return pa.concat_tables([krx, nxt])


def independent_bars(ticks: pa.Table, venue: str) -> list[tuple]:
    """15-minute bars computed here: one venue by cum_volume order, ALL by (ts, KRX first, cum_volume)."""
    from decimal import Decimal

    from tickvault.core.wire import KST

    rows = [r for r in ticks.to_pylist() if venue == "ALL" or r["venue"] == venue]
    groups: dict = {}
    for r in rows:
        local = r["ts"].astimezone(KST)
        bucket = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
        groups.setdefault(bucket, []).append(r)
    out = []
    for _bucket, members in sorted(groups.items()):
        key = (lambda r: (r["ts"], r["venue"] != "KRX", r["cum_volume"])) if venue == "ALL" else (lambda r: r["cum_volume"])
        members.sort(key=key)
        volume = sum(r["volume"] for r in members)
        turnover = sum(r["price"] * r["volume"] for r in members)
        out.append((members[0]["price"], max(r["price"] for r in members), min(r["price"] for r in members), members[-1]["price"],
                    volume, len(members), turnover, (turnover / Decimal(volume)).quantize(Decimal("0.0001"))))
    return out


def test_two_venues_are_two_series_in_both_stores(settings: Settings) -> None:
    batch = two_venue_ticks()
    start, end = trading_day_bounds(DAY)
    with HotStore(settings) as hot, Lake(settings) as lake:
        hot.init()
        lake.init()
        assert hot.upsert(batch) == lake.upsert(batch) == batch.num_rows
        assert hot.upsert(batch) == lake.upsert(batch) == 0
        for store in (hot, lake):
            assert store.symbols_of_day(DAY) == [("KRX", "005930"), ("NXT", "005930")]
            assert all(b.missing == 0 for b in store.breaks(start, end)), "each venue's cum_volume is its own"
            assert {(m.venue, m.symbol) for m in store.minute_fingerprints(start, end)} == {("KRX", "005930"), ("NXT", "005930")}
            assert store.read_ticks(start, end, venue="NXT").num_rows == 90
        assert hot.read_ticks(start, end).equals(lake.read_ticks(start, end))
        for venue in ("KRX", "NXT", "ALL"):
            hot_bars = hot.candles("15m", start, end, ["005930"], session="extended", venue=venue)
            lake_bars = lake.candles("15m", start, end, ["005930"], session="extended", venue=venue)
            assert hot_bars.equals(lake_bars), venue
            assert set(hot_bars.column("venue").to_pylist()) == {venue}
            got = [tuple(r[c] for c in ("open", "high", "low", "close", "volume", "trade_count", "turnover", "vwap"))
                   for r in hot_bars.to_pylist()]
            assert got == independent_bars(batch, venue), venue
