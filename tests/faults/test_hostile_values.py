"""Hostile values (issue 13.2, 13.4): the full timestamp domain and conflicting duplicates,
through real archiver processes.

- Times across everything ``datetime`` can spell (year 1 to 9999, offsets from -12:00 to +14:00,
  Asia/Seoul's historic LMT / +08:30 / summer-time years), each sent twice: everything outside
  2000..2100 UTC is dead-lettered by both groups; the trading date's edges (00:00 and
  23:59:59.999999 KST, the same instant spelled in several offsets) are stored exactly once.
- Conflicting duplicates: a tick published again later with another price, volume or side
  (within a batch or against stored rows) is dead-lettered by both groups with both values;
  identical redeliveries are not; the stores keep the first value.

Each ends with the truth check, a verify that passes, and — after one stored value is changed
behind tickvault's back — a verify that fails and a reconcile that names the row.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import redis
from faultkit import assert_truth, drain_with_archivers, record, scale, truth_check

from factories import DAY
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.core.wire import KST, TICK_SCHEMA, WireEncoder, format_price
from tickvault.dev.simulate import generate_day
from tickvault.services.sync import verify
from tickvault.services.sync.reconcile import reconcile

OFFSETS = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((9, 0), (8, 30), (10, 0), (0, 0), (-12, 0), (14, 0), (5, 45))]


def _letters_by_stage(rclient: redis.Redis, settings: Settings) -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {"archive-hot": {}, "archive-cold": {}}
    for _, fields in rclient.xrange(settings.dlq_stream):
        out[fields["stage"]][fields["entry_id"]] = fields
    return out


def _change_one_hot_tick(settings: Settings, table: pa.Table) -> dict[str, object]:
    """Behind tickvault's back: the hot copy of one tick gets another price (the stores now disagree)."""
    row = table.slice(table.num_rows // 2, 1).to_pylist()[0]
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        changed = conn.execute(
            f'UPDATE "{settings.pg_schema}".ticks SET price = price + 1 '
            "WHERE venue = %s AND symbol = %s AND ts = %s AND cum_volume = %s",
            (row["venue"], row["symbol"], row["ts"], row["cum_volume"]),
        ).rowcount
    assert changed == 1
    return row


def _verify_catches(settings: Settings, row: dict[str, object]) -> None:
    before = verify(settings, DAY)
    assert not before.consistent and len(before.differences) == 1, before.reasons()
    named = reconcile(settings, DAY, repair=True)
    assert [(c.symbol, c.cum_volume) for c in named.conflicts] == [(row["symbol"], row["cum_volume"])]
    assert not named.consistent


def _domain_texts(rng: random.Random, count: int) -> list[str]:
    """Instants outside [2000, 2100) UTC spelled every way datetime allows, plus the historic Seoul offsets."""
    fixed = ["0001-01-01T00:00:00+09:00", "0001-01-01T00:00:00-12:00", "1900-01-01T09:00:00+09:00", "1908-04-01T09:00:00+08:30",
             "1954-06-01T09:00:00+08:30", "1987-07-01T09:00:00+10:00", "1988-05-08T02:30:00+09:00", "1999-12-31T23:59:59.999999Z",
             "1999-12-31T23:59:59.999999+00:00", "2000-01-01T08:59:59.999999+09:00", "2100-01-01T00:00:00Z",
             "2100-01-01T09:00:00+09:00", "9999-12-31T23:59:59.999999-12:00", "9999-12-31T23:59:59+14:00"]
    drawn = []
    for _ in range(count - len(fixed)):
        year = rng.choice([rng.randint(1, 1999), rng.randint(2101, 9999)])
        moment = datetime(year, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                          rng.choice([0, rng.randint(0, 999_999)]))
        drawn.append(moment.replace(tzinfo=rng.choice(OFFSETS)).isoformat())
    return fixed + drawn


def _edge_ticks() -> tuple[pa.Table, list[dict[str, str]]]:
    """Ticks at both ends of DAY (KST) on their own symbol, each spelled in several offsets."""
    first, end = trading_day_bounds(DAY)
    last = end - timedelta(microseconds=1)
    rows = [(first, 10, 10), (last, 5, 15)]
    table = pa.table({
        "venue": ["KRX", "KRX"], "symbol": ["999990", "999990"], "ts": [t for t, _, _ in rows], "price": [Decimal(1000)] * 2,
        "volume": [v for _, v, _ in rows], "cum_volume": [c for _, _, c in rows], "side": [None, None], "source": ["edge", "edge"],
        "received_at": [None, None],
    }).cast(TICK_SCHEMA)
    entries = []
    for ts, volume, cum in rows:
        for tz in (KST, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14))):
            entries.append({"v": "1", "venue": "KRX", "symbol": "999990", "ts": ts.astimezone(tz).isoformat(), "price": "1000",
                            "volume": str(volume), "cum_volume": str(cum), "side": "", "source": "edge"})
    return table, entries


def test_the_full_timestamp_domain(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    rng = random.Random(131)
    day = generate_day(DAY, symbols=3, ticks=scale(3_000, 30_000), seed=131)
    encoder = WireEncoder(day)
    valid = [encoder.fields(i) for i in range(day.num_rows)]
    edges, edge_entries = _edge_ticks()
    template = {"v": "1", "symbol": "005930", "price": "100", "volume": "1", "cum_volume": "1", "source": "hostile"}
    hostile = []
    for text in _domain_texts(rng, scale(200, 2_000)):
        as_ts = dict(template, ts=text)
        as_received = dict(template, ts=valid[0]["ts"], cum_volume="999999999", received_at=text)
        hostile += [as_ts, as_ts, as_received, as_received]  # each twice: a redelivery is refused again
    kinds = [0] * len(valid) + [1] * len(hostile) + [2] * len(edge_entries)
    rng.shuffle(kinds)
    sources = {0: iter(valid), 1: iter(hostile), 2: iter(edge_entries)}
    entries = [next(sources[k]) for k in kinds]
    ids = Publisher(rclient, settings.stream).publish_fields(entries)
    refused = {i for i, k in zip(ids, kinds) if k == 1}

    drain_with_archivers(settings, rclient, tmp_path, "hostile values")

    letters = _letters_by_stage(rclient, settings)
    for stage, mine in letters.items():
        assert set(mine) == refused, (stage, len(mine), len(refused))
        assert all("outside the accepted range 2000-01-01 .. 2100-01-01 UTC" in f["reason"] for f in mine.values()), stage
    truth = pa.concat_tables([day.cast(TICK_SCHEMA), edges])
    report = truth_check(settings, truth, tmp_path)
    record("full timestamp domain (years 1-9999, every offset, Seoul's historic offsets), each sent twice", report,
           len(entries), len(hostile), "out-of-range times", dead_lettered_per_group=len(refused), edge_spellings=len(edge_entries))
    assert_truth(report)
    assert verify(settings, DAY).consistent
    previous = verify(settings, DAY - timedelta(days=1))  # the 00:00 KST tick belongs to DAY, not to the date before
    assert [check.ticks for check in previous.stores.values()] == [0, 0]
    _verify_catches(settings, _change_one_hot_tick(settings, day.cast(TICK_SCHEMA)))


def test_conflicting_duplicates(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    rng = random.Random(137)
    day = generate_day(DAY, symbols=4, ticks=scale(4_000, 40_000), seed=137)
    encoder = WireEncoder(day)
    valid = [encoder.fields(i) for i in range(day.num_rows)]
    keyed: list[tuple[float, bool, dict[str, str]]] = [(float(i), False, fields) for i, fields in enumerate(valid)]
    for original in rng.sample(range(len(valid)), scale(60, 600)):
        fields = dict(valid[original])
        volume, cum = int(fields["volume"]), int(fields["cum_volume"])
        change = rng.choice(["price", "volume", "side"])
        if change == "volume" and volume < cum:
            fields["volume"] = str(volume + 1)  # same key (cum_volume stays), another volume
        elif change == "side":
            fields["side"] = {"B": "S", "S": "", "": "B"}[fields.get("side", "")]
        else:
            fields["price"] = format_price(day.column("price")[original].as_py() + 1)
        # after its original: half within the next 20 entries (often the same batch), half anywhere later
        later = rng.randint(0, 20) if rng.random() < 0.5 else rng.randint(0, len(valid))
        keyed.append((original + later + 0.5, True, fields))
    keyed.sort(key=lambda item: item[0])
    entries = [fields for _, _, fields in keyed]
    conflicting = [position for position, (_, is_conflict, _) in enumerate(keyed) if is_conflict]
    redelivered = rng.sample(range(len(valid)), scale(40, 400))
    entries += [valid[i] for i in redelivered]
    ids = Publisher(rclient, settings.stream).publish_fields(entries)
    conflict_ids = {ids[p] for p in conflicting}

    drain_with_archivers(settings, rclient, tmp_path, "hostile values")

    letters = _letters_by_stage(rclient, settings)
    for stage, mine in letters.items():
        assert set(mine) == conflict_ids, (stage, len(set(mine) - conflict_ids), len(conflict_ids - set(mine)))
        for entry_id, f in mine.items():
            assert f["reason"].startswith("conflicting duplicate of "), f["reason"]
            assert " holds price " in f["reason"] and ", this entry price " in f["reason"]
            assert {k[2:]: v for k, v in f.items() if k.startswith("f.")} == entries[ids.index(entry_id)]
    report = truth_check(settings, day, tmp_path)
    record("conflicting duplicates (same key, other price/volume/side; same batch or later) and identical redeliveries",
           report, len(entries), len(conflict_ids), "conflicting duplicates", conflicts_detected_per_group=len(conflict_ids),
           identical_redeliveries=len(redelivered))
    assert_truth(report)
    assert verify(settings, DAY).consistent
    _verify_catches(settings, _change_one_hot_tick(settings, day.cast(TICK_SCHEMA)))


def test_domain_texts_are_all_outside_the_range() -> None:
    """The scenario's premise: every drawn instant lies outside [2000, 2100) UTC."""
    low, high = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    texts = _domain_texts(random.Random(1), 500)
    assert not any(low <= datetime.fromisoformat(t) < high for t in texts)
    assert date(1987, 7, 1).isoformat() in " ".join(texts)
