"""The stream's at-least-once mechanics against a real Redis."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import redis

from factories import interleaved_ticks, one_symbol_ticks
from tickvault.core.config import Settings
from tickvault.core.frames import decode_raw_entries
from tickvault.core.stream import FrameLimits, GroupConsumer, Publisher, SideRetention, connect_raw, dead_letter, group_info, stream_last_id
from tickvault.core.wire import DeadLetter


@pytest.fixture
def raw(settings: Settings) -> Iterator[redis.Redis]:
    client = connect_raw(settings.redis_dsn)
    yield client
    client.close()


def test_publisher_pipelines_in_chunks_and_keeps_order(settings: Settings, rclient: redis.Redis) -> None:
    ids = Publisher(rclient, settings.stream, chunk=7).publish(one_symbol_ticks(20))
    assert len(ids) == 20 and len(set(ids)) == 20
    stored = rclient.xrange(settings.stream)
    assert [i for i, _ in stored] == ids
    assert [int(f["cum_volume"]) for _, f in stored] == list(range(1, 21))


def test_restarted_consumer_rereads_its_unacked_entries_first(settings: Settings, rclient: redis.Redis, raw: redis.Redis) -> None:
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(10))
    first = GroupConsumer(raw, settings.stream, "hot", "c1")
    first.ensure_group()
    got = first.read(4, 10)
    first.ack([got[0][0]])  # 3 left unacked: the "crash"
    restarted = GroupConsumer(raw, settings.stream, "hot", "c1")
    replay = restarted.read(100, 10)
    assert [i for i, _ in replay] == [i for i, _ in got[1:]]
    rest = restarted.read(100, 10)
    assert len(rest) == 6
    assert restarted.read(100, 10) == []


def test_entries_of_a_dead_consumer_are_claimed(settings: Settings, rclient: redis.Redis, raw: redis.Redis) -> None:
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(5))
    dead = GroupConsumer(raw, settings.stream, "cold", "dead")
    dead.ensure_group()
    taken = dead.read(5, 10)
    assert len(taken) == 5
    time.sleep(1.1)
    alive = GroupConsumer(raw, settings.stream, "cold", "alive", claim_idle_ms=1000)
    claimed = alive.read(10, 10)
    assert [i for i, _ in claimed] == [i for i, _ in taken]
    pending = rclient.xpending(settings.stream, "cold")
    assert pending["consumers"] == [{"name": "alive", "pending": 5}]


def test_a_running_consumer_takes_over_a_peer_that_dies_later(settings: Settings, rclient: redis.Redis, raw: redis.Redis) -> None:
    """Archivers on several hosts: the survivor claims the dead one's entries without a restart."""
    survivor = GroupConsumer(raw, settings.stream, "cold", "survivor", claim_idle_ms=1000)
    survivor.ensure_group()
    assert survivor.read(10, 10) == []  # running: its start-up claim is behind it
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(4))
    taken = GroupConsumer(raw, settings.stream, "cold", "dies").read(4, 10)
    assert len(taken) == 4
    time.sleep(1.1)
    claimed = survivor.read(10, 10)
    assert [i for i, _ in claimed] == [i for i, _ in taken]
    assert rclient.xpending(settings.stream, "cold")["consumers"] == [{"name": "survivor", "pending": 4}]


def test_pending_entries_deleted_from_the_stream_are_acked_not_returned(settings: Settings, rclient: redis.Redis, raw: redis.Redis) -> None:
    ids = Publisher(rclient, settings.stream).publish(one_symbol_ticks(3))
    consumer = GroupConsumer(raw, settings.stream, "hot", "c1")
    consumer.ensure_group()
    consumer.read(3, 10)
    rclient.xdel(settings.stream, ids[1])
    restarted = GroupConsumer(raw, settings.stream, "hot", "c1")
    assert [i for i, _ in restarted.read(10, 10)] == [ids[0], ids[2]]
    assert rclient.xpending(settings.stream, "hot")["pending"] == 2


def test_dead_letters_keep_fields_reason_and_original_id(settings: Settings, rclient: redis.Redis) -> None:
    dead_letter(rclient, settings.dlq_stream, [DeadLetter("5-1", {"price": "x", "reason": "spoof"}, "price: bad")], stage="archive-hot")
    [(_, fields)] = rclient.xrange(settings.dlq_stream)
    assert fields == {"f.price": "x", "f.reason": "spoof", "reason": "price: bad", "entry_id": "5-1", "stage": "archive-hot"}


def test_group_info_reports_lag_and_pending(settings: Settings, rclient: redis.Redis, raw: redis.Redis) -> None:
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(8))
    consumer = GroupConsumer(raw, settings.stream, "hot", "c1")
    consumer.ensure_group()
    consumer.read(3, 10)
    info = group_info(rclient, settings.stream)["hot"]
    assert info["pending"] == 3
    assert info["lag"] == 5


def test_group_lag_does_not_trust_a_read_counter_that_cannot_be_right(settings: Settings, rclient: redis.Redis) -> None:
    """A replica promoted by a failover keeps entries-read behind the master's on Redis < 7.2.5
    (redis#12898); XGROUP SETID ... ENTRIESREAD sets such counters on one Redis."""
    ids = Publisher(rclient, settings.stream).publish(one_symbol_ticks(8))
    rclient.xgroup_create(settings.stream, "hot", id="$", entries_read=2)  # delivered all, counter behind
    rclient.xgroup_create(settings.stream, "cold", id=ids[2], entries_read=8)  # 5 to go, counter ahead
    assert {name: i["lag"] for name, i in group_info(rclient, settings.stream).items()} == {"hot": 0, "cold": 5}


def test_stream_figures_read_frames_and_poison_with_a_text_client(settings: Settings, rclient: redis.Redis, raw: redis.Redis) -> None:
    """XINFO STREAM carries the first and the last entry: when they are v2 frames (Arrow bytes) or
    bytes a producer wrote, status, metrics, rebuild and the demo still get the last id and lags."""
    ids = Publisher(rclient, settings.stream).publish_table(interleaved_ticks(8), frame_trades=3)
    last = raw.execute_command("XADD", settings.stream, "*", b"v", b"2", b"frame", b"\xff\xfe")
    GroupConsumer(raw, settings.stream, "hot", "c1").ensure_group()
    assert stream_last_id(rclient, settings.stream) == last.decode()
    assert group_info(rclient, settings.stream)["hot"]["lag"] == len(ids) + 1


def test_a_text_client_is_refused_for_consuming(settings: Settings, rclient: redis.Redis) -> None:
    with pytest.raises(ValueError, match="bytes client"):
        GroupConsumer(rclient, settings.stream, "hot", "c1")


POISON = {
    "value not UTF-8": [b"v", b"1", b"symbol", b"\xff\xfe00593", b"price", b"1"],
    "name not UTF-8": [b"v", b"1", b"\xc3(", b"x"],
    "duplicate name": [b"v", b"1", b"price", b"100", b"price", b"200"],
}


def test_entries_are_read_as_sent_and_poison_is_dead_lettered_with_its_bytes(
    settings: Settings, rclient: redis.Redis, raw: redis.Redis
) -> None:
    good = Publisher(rclient, settings.stream).publish(one_symbol_ticks(2))
    poison_ids = {why: raw.execute_command("XADD", settings.stream, "*", *parts).decode() for why, parts in POISON.items()}
    consumer = GroupConsumer(raw, settings.stream, "hot", "c1")
    consumer.ensure_group()
    entries = consumer.read(10, 10)  # a str-decoding client raised UnicodeDecodeError here, forever
    assert [i for i, _ in entries] == good + list(poison_ids.values())
    assert entries[-1][1] == POISON["duplicate name"]  # both values kept, not resolved to the last one
    decoded = decode_raw_entries(entries)
    assert decoded.table.num_rows == 2
    letters = {letter.entry_id: letter for letter in decoded.dead}
    assert set(letters) == set(poison_ids.values())
    assert "more than once" in letters[poison_ids["duplicate name"]].reason
    assert "not valid UTF-8" in letters[poison_ids["value not UTF-8"]].reason
    for why, parts in POISON.items():
        letter = letters[poison_ids[why]]
        assert letter.encoding == "base64" and "base64" in letter.reason
        kept = [base64.b64decode(letter.fields[f"{n}.{part}"]) for n in range(len(parts) // 2) for part in ("name", "value")]
        assert kept == parts  # the original bytes are recoverable, in order
    dead_letter(raw, settings.dlq_stream, decoded.dead, stage="archive-hot")
    stored = {f["entry_id"]: f for _, f in rclient.xrange(settings.dlq_stream)}
    assert stored[poison_ids["name not UTF-8"]]["encoding"] == "base64"
    assert base64.b64decode(stored[poison_ids["name not UTF-8"]]["f.1.name"]) == b"\xc3("


def test_side_streams_are_trimmed_by_length_and_age_and_status_reports_them(settings: Settings, rclient: redis.Redis) -> None:
    from tickvault.ops.status import redis_status

    for n in range(1, 301):
        rclient.xadd(settings.dlq_stream, {"reason": "old"}, id=f"{n}-0")  # from 1970: older than any retention
    letters = [DeadLetter(f"{n}-1", {"price": "x"}, "price: bad") for n in range(1000)]
    dead_letter(rclient, settings.dlq_stream, letters, stage="archive-hot", retention=SideRetention(max_entries=100, max_age_days=1))
    remaining = rclient.xrange(settings.dlq_stream)
    assert all(f["reason"] != "old" for _, f in remaining)  # trimmed by age
    assert 100 <= len(remaining) < 300  # trimmed by length (approximately: whole nodes)
    report = redis_status(settings.model_copy(update={"dlq_max_entries": 100, "dlq_max_age_days": 1}))
    dlq = report["side_streams"]["dlq"]
    assert dlq["length"] == len(remaining) and dlq["retention"] == {"max_entries": 100, "max_age_days": 1}
    assert dlq["oldest_age_days"] is not None and dlq["oldest_age_days"] < 1
    assert report["side_streams"]["gaps"]["length"] == 0


def test_dead_letter_reasons_are_capped_and_the_value_kept_once(settings: Settings, rclient: redis.Redis) -> None:
    huge = "9" * 200_000
    dead_letter(rclient, settings.dlq_stream, [DeadLetter("1-0", {"price": huge}, f"price: too large: {huge!r}")], stage="archive-hot")
    [(_, fields)] = rclient.xrange(settings.dlq_stream)
    assert fields["f.price"] == huge
    assert len(fields["reason"]) <= 400 and fields["reason"].endswith("(200020 chars)")


def test_collected_ticks_go_out_as_frames_unless_too_few_or_unconvertible(settings: Settings, rclient: redis.Redis, raw: redis.Redis) -> None:
    fields = [t.to_fields() for t in one_symbol_ticks(20)]
    publisher = Publisher(rclient, settings.stream)
    limits = FrameLimits(max_trades=8)
    assert len(publisher.publish_collected(fields, limits)) == 3  # 8 + 8 + 4 trades
    assert len(publisher.publish_collected(fields[:7], limits)) == 7  # too few for a frame: v1
    broken = [*fields[:10], dict(fields[10], price="abc")]
    assert len(publisher.publish_collected(broken, limits)) == 11  # one bad value: all v1, refused by the archivers
    assert len(publisher.publish_collected(fields, FrameLimits(max_trades=0))) == 20
    consumer = GroupConsumer(raw, settings.stream, "hot", "c1")
    consumer.ensure_group()
    decoded = decode_raw_entries(consumer.read(100, 10))
    assert decoded.table.num_rows == 20 + 7 + 10 + 20 and len(decoded.dead) == 1
