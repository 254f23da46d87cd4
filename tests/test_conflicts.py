"""Same natural key, different trade values (issue 13.4): never resolved silently.

Before: each store kept whichever copy it committed first, the stores could hold different
prices, and verify / reconcile said "consistent" because the fingerprint covered only ts and
cum_volume.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
import redis
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from factories import day_ticks
from helpers import settings_env, store_both
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.errors import InvalidTick
from tickvault.core.stream import Publisher
from tickvault.core.wire import NATURAL_KEY, TICK_SCHEMA, Tick, decode_entries, parse_fields, table_problems, ticks_to_table
from tickvault.services.archiver import build_archiver
from tickvault.services.sync import verify
from tickvault.services.sync.reconcile import reconcile
from tickvault.stores.contract import conform
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 20)


def _entry(price: str = "100", side: str = "", cum: int = 1) -> dict[str, str]:
    return {"v": "1", "symbol": "005930", "ts": "2026-11-20T09:00:00+09:00", "price": price, "volume": "1",
            "cum_volume": str(cum), "side": side, "source": "kis"}


def test_a_conflicting_duplicate_in_one_batch_is_refused_with_both_values() -> None:
    batch = decode_entries([("1-0", _entry()), ("2-0", _entry(price="101")), ("3-0", _entry()), ("4-0", _entry(side="S"))])
    assert batch.ids == ["1-0", "3-0"]  # the identical redelivery stays (dedupe drops it), the conflicts go
    assert [d.entry_id for d in batch.dead] == ["2-0", "4-0"]
    assert "entry 1-0 holds price 100 volume 1 side -, this entry price 101 volume 1 side -" in batch.dead[0].reason
    assert "this entry price 100 volume 1 side S" in batch.dead[1].reason
    assert batch.dead[0].fields == _entry(price="101")


def test_a_conflicting_redelivery_is_dead_lettered_by_both_archivers(settings: Settings, rclient: redis.Redis) -> None:
    publisher = Publisher(rclient, settings.stream)
    publisher.publish_fields([_entry(cum=1), _entry(cum=2, side="B")])
    archivers = [build_archiver(settings, group, consumer=f"test-{group}") for group in ("hot", "cold")]
    for a in archivers:
        a.run_until_idle()
    later = publisher.publish_fields([_entry(cum=1), _entry(cum=2, side="S"), _entry(cum=3, price="99")])
    for a in archivers:
        a.run_until_idle()
    letters = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert sorted((f["stage"], f["entry_id"]) for f in letters) == [("archive-cold", later[1]), ("archive-hot", later[1])]
    for f in letters:
        assert "holds price 100 volume 1 side B, this entry price 100 volume 1 side S" in f["reason"], f["reason"]
        assert f["f.side"] == "S"
    for a in archivers:
        stored = a.store.read_ticks(*trading_day_bounds(DAY))
        assert stored.column("side").to_pylist() == [None, "B", None], a.store.name
        assert rclient.xpending(settings.stream, a.consumer.group)["pending"] == 0
        a.store.close()


def test_an_identical_redelivery_next_to_a_conflicting_copy_is_not_a_dead_letter(settings: Settings, rclient: redis.Redis) -> None:
    """Long-mode fault suite finding: the stored tick, then in one batch a conflicting copy and an
    identical redelivery of it. The batch's decode kept the first (conflicting) copy and refused
    the redelivery, so both entries became dead letters although the store keeps the redelivered value."""
    publisher = Publisher(rclient, settings.stream)
    publisher.publish_fields([_entry(cum=1)])
    archivers = [build_archiver(settings, group, consumer=f"test-{group}") for group in ("hot", "cold")]
    for a in archivers:
        a.run_until_idle()
    later = publisher.publish_fields([_entry(price="101", cum=1), _entry(cum=1), _entry(cum=2)])
    for a in archivers:
        a.run_until_idle()
    letters = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert sorted((f["stage"], f["entry_id"]) for f in letters) == [("archive-cold", later[0]), ("archive-hot", later[0])]
    for f in letters:
        assert "holds price 100 volume 1 side -, this entry price 101" in f["reason"], f["reason"]
    for a in archivers:
        stored = a.store.read_ticks(*trading_day_bounds(DAY))
        assert [str(p) for p in stored.column("price").to_pylist()] == ["100.0000", "100.0000"], a.store.name
        assert rclient.xpending(settings.stream, a.consumer.group)["pending"] == 0
        a.store.close()


FLIP_SIDE = {"B": "S", "S": None, None: "B"}


def _day_with_one_changed(kind: str) -> tuple[pa.Table, pa.Table]:
    """A day, and the same day with tick 17 received again later from another source with another price or side."""
    ticks = day_ticks(DAY, ["005930", "000660"], 40, seed=13)
    changed = list(ticks)
    t = changed[17]
    price, side = (t.price + 1, t.side) if kind == "price" else (t.price, FLIP_SIDE[t.side])
    changed[17] = Tick(t.symbol, t.ts, price, t.volume, t.cum_volume, side, "other", t.received_at, t.venue)
    return ticks_to_table(ticks), ticks_to_table(changed)


@pytest.mark.parametrize("kind", ["price", "side"])
def test_verify_fails_and_reconcile_names_a_key_the_stores_hold_differently(settings: Settings, kind: str) -> None:
    hot_table, cold_table = _day_with_one_changed(kind)
    store_both(settings, hot_table, cold_table)
    report = verify(settings, DAY)
    assert not report.consistent
    assert len(report.differences) == 1

    result = reconcile(settings, DAY, repair=True)
    assert not result.consistent
    assert len(result.conflicts) == 1
    conflict = result.conflicts[0].to_dict()
    row = hot_table.slice(17, 1).to_pylist()[0]
    assert (conflict["symbol"], conflict["cum_volume"]) == (row["symbol"], row["cum_volume"])
    assert conflict["hot"]["source"] != conflict["cold"]["source"] == "other"
    assert (result.added_to_hot, result.added_to_cold) == (0, 0)
    for store, table in ((HotStore(settings), hot_table), (Lake(settings), cold_table)):  # neither store was changed
        got = store.read_ticks(*trading_day_bounds(DAY))
        assert got.num_rows == table.num_rows
        assert sorted(got.to_pylist(), key=str) == sorted(table.to_pylist(), key=str), store.name
        store.close()

    out = CliRunner().invoke(cli, ["reconcile", "--date", DAY.isoformat()], env=settings_env(settings))
    assert out.exit_code != 0
    assert f"conflict KRX {row['symbol']}" in out.output
    assert "1 conflicting duplicate(s)" in out.output


def test_a_bad_row_written_into_the_lake_by_hand_is_not_copied_into_hot(settings: Settings) -> None:
    """Issue 13.7: copies between stores validate like the wire does and report what they refuse."""
    ticks = day_ticks(DAY, ["005930"], 20, seed=3)
    good = ticks_to_table(ticks)
    bad_tick = Tick("005930", ticks[-1].ts, ticks[-1].price, 5, ticks[-1].cum_volume + 5, None, "hand")
    bad = ticks_to_table([bad_tick])
    bad = bad.set_column(bad.schema.get_field_index("volume"), "volume", pa.array([-5], pa.int64()))
    store_both(settings, good, good)
    lake = Lake(settings)
    lake.write(bad)  # as `lake-sql --writable` would: no validation on this path
    lake.close()
    result = reconcile(settings, DAY, repair=True)
    assert result.added_to_hot == 0
    assert [(target, reject.reason) for target, reject in result.rejected] == [("hot", "volume: must be > 0")]
    assert not result.consistent
    hot = HotStore(settings)
    assert hot.read_ticks(*trading_day_bounds(DAY)).num_rows == 20
    assert hot.candles("1d", *trading_day_bounds(DAY)).column("volume").to_pylist() == [sum(t.volume for t in ticks)]
    hot.close()
    out = CliRunner().invoke(cli, ["reconcile", "--date", DAY.isoformat(), "--repair"], env=settings_env(settings))
    assert out.exit_code != 0
    assert "not copied to hot: KRX 005930" in out.output and "volume: must be > 0" in out.output


_NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
_instants = st.sampled_from([datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC), _NOW,
                             _NOW + timedelta(days=1), _NOW + timedelta(days=1, microseconds=1), datetime(2099, 12, 31, tzinfo=UTC),
                             datetime(1987, 7, 1, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC)])
_rows = st.fixed_dictionaries({
    "venue": st.sampled_from(["KRX", "NXT"]), "symbol": st.sampled_from(["005930", "00593", "abcdef", "A0593X", "0059301"]),
    "ts": _instants, "price": st.sampled_from([Decimal("-1"), Decimal(0), Decimal("0.0001"), Decimal(62700)]),
    "volume": st.sampled_from([-1, 0, 1, 7]), "cum_volume": st.sampled_from([0, 1, 7, 100]),
    "side": st.sampled_from([None, "B", "S", "X", "b"]), "source": st.sampled_from(["kis", "KIS", "키움", "a" * 33, "x.y-z_1"]),
    "received_at": st.one_of(st.none(), _instants),
})


@hsettings(max_examples=300, deadline=None, database=None)
@given(st.lists(_rows, min_size=1, max_size=8))
def test_conform_refuses_exactly_what_the_wire_refuses(rows: list[dict[str, object]]) -> None:
    """Issue 13.7: the copy paths' check (conform) and the wire's (parse_fields) agree row by row."""
    table = pa.Table.from_pylist(rows, schema=TICK_SCHEMA)
    problems = table_problems(table, _NOW)
    for row, problem in zip(rows, problems):
        tick = Tick(row["symbol"], row["ts"], row["price"], row["volume"], row["cum_volume"], row["side"], row["source"],  # type: ignore[arg-type]
                    row["received_at"], row["venue"])  # type: ignore[arg-type]
        try:
            parse_fields(tick.to_fields(), _NOW)
            wire_refuses = False
        except InvalidTick:
            wire_refuses = True
        assert (problem is not None) == wire_refuses, (row, problem)
    kept = conform(table, _NOW)
    assert len(kept.rejects) == sum(p is not None for p in problems)
    valid_keys = {tuple(r[k] for k in NATURAL_KEY) for r, p in zip(rows, problems) if p is None}
    assert kept.table.num_rows == len(valid_keys)


def test_an_upsert_of_conflicting_rows_keeps_the_stored_value_and_says_so(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    stored, changed = _day_with_one_changed("price")
    for store in (HotStore(settings), Lake(settings)):
        store.init()
        assert store.upsert(stored) == stored.num_rows
        caplog.clear()
        assert store.upsert(changed) == 0
        assert "1 row(s) not stored: the store holds their key with other values" in caplog.text, store.name
        got = store.read_ticks(*trading_day_bounds(DAY))
        assert sorted(got.column("price").to_pylist()) == sorted(stored.column("price").to_pylist())
        store.close()
