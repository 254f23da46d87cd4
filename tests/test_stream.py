"""The stream's at-least-once mechanics against a real Redis."""

from __future__ import annotations

import time

import redis

from factories import one_symbol_ticks
from tickvault.core.config import Settings
from tickvault.core.stream import GroupConsumer, Publisher, dead_letter, group_info
from tickvault.core.wire import DeadLetter


def test_publisher_pipelines_in_chunks_and_keeps_order(settings: Settings, rclient: redis.Redis) -> None:
    ids = Publisher(rclient, settings.stream, chunk=7).publish(one_symbol_ticks(20))
    assert len(ids) == 20 and len(set(ids)) == 20
    stored = rclient.xrange(settings.stream)
    assert [i for i, _ in stored] == ids
    assert [int(f["cum_volume"]) for _, f in stored] == list(range(1, 21))


def test_restarted_consumer_rereads_its_unacked_entries_first(settings: Settings, rclient: redis.Redis) -> None:
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(10))
    first = GroupConsumer(rclient, settings.stream, "hot", "c1")
    first.ensure_group()
    got = first.read(4, 10)
    first.ack([got[0][0]])  # 3 left unacked: the "crash"
    restarted = GroupConsumer(rclient, settings.stream, "hot", "c1")
    replay = restarted.read(100, 10)
    assert [i for i, _ in replay] == [i for i, _ in got[1:]]
    rest = restarted.read(100, 10)
    assert len(rest) == 6
    assert restarted.read(100, 10) == []


def test_entries_of_a_dead_consumer_are_claimed(settings: Settings, rclient: redis.Redis) -> None:
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(5))
    dead = GroupConsumer(rclient, settings.stream, "cold", "dead")
    dead.ensure_group()
    taken = dead.read(5, 10)
    assert len(taken) == 5
    time.sleep(1.1)
    alive = GroupConsumer(rclient, settings.stream, "cold", "alive", claim_idle_ms=1000)
    claimed = alive.read(10, 10)
    assert [i for i, _ in claimed] == [i for i, _ in taken]
    pending = rclient.xpending(settings.stream, "cold")
    assert pending["consumers"] == [{"name": "alive", "pending": 5}]


def test_a_running_consumer_takes_over_a_peer_that_dies_later(settings: Settings, rclient: redis.Redis) -> None:
    """Archivers on several hosts: the survivor claims the dead one's entries without a restart."""
    survivor = GroupConsumer(rclient, settings.stream, "cold", "survivor", claim_idle_ms=1000)
    survivor.ensure_group()
    assert survivor.read(10, 10) == []  # running: its start-up claim is behind it
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(4))
    taken = GroupConsumer(rclient, settings.stream, "cold", "dies").read(4, 10)
    assert len(taken) == 4
    time.sleep(1.1)
    claimed = survivor.read(10, 10)
    assert [i for i, _ in claimed] == [i for i, _ in taken]
    assert rclient.xpending(settings.stream, "cold")["consumers"] == [{"name": "survivor", "pending": 4}]


def test_pending_entries_deleted_from_the_stream_are_acked_not_returned(settings: Settings, rclient: redis.Redis) -> None:
    ids = Publisher(rclient, settings.stream).publish(one_symbol_ticks(3))
    consumer = GroupConsumer(rclient, settings.stream, "hot", "c1")
    consumer.ensure_group()
    consumer.read(3, 10)
    rclient.xdel(settings.stream, ids[1])
    restarted = GroupConsumer(rclient, settings.stream, "hot", "c1")
    assert [i for i, _ in restarted.read(10, 10)] == [ids[0], ids[2]]
    assert rclient.xpending(settings.stream, "hot")["pending"] == 2


def test_dead_letters_keep_fields_reason_and_original_id(settings: Settings, rclient: redis.Redis) -> None:
    dead_letter(rclient, settings.dlq_stream, [DeadLetter("5-1", {"price": "x", "reason": "spoof"}, "price: bad")], stage="archive-hot")
    [(_, fields)] = rclient.xrange(settings.dlq_stream)
    assert fields == {"f.price": "x", "f.reason": "spoof", "reason": "price: bad", "entry_id": "5-1", "stage": "archive-hot"}


def test_group_info_reports_lag_and_pending(settings: Settings, rclient: redis.Redis) -> None:
    Publisher(rclient, settings.stream).publish(one_symbol_ticks(8))
    consumer = GroupConsumer(rclient, settings.stream, "hot", "c1")
    consumer.ensure_group()
    consumer.read(3, 10)
    info = group_info(rclient, settings.stream)["hot"]
    assert info["pending"] == 3
    assert info["lag"] == 5
