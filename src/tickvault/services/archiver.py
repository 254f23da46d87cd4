"""The consume -> write -> ack loop shared by both stores (the kdb+ "rdb/hdb subscriber").

Invariant: an entry is acked only after the batch holding it is durable in the store (or,
if it failed validation, durable in the dead-letter stream). A crash anywhere therefore
leaves the entry pending, it is re-read on restart, and the store's idempotent upsert on
natural key makes the second write harmless.

The store also records the highest stream id it committed (``StreamPosition``), in the same
transaction as the data. It is an audit marker (status, rebuild), not a skip filter: with
several consumers and XAUTOCLAIM, ids are not delivered in order, so "id <= checkpoint" does
not prove an entry was written.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import redis

from ..core.config import Settings
from ..core.frames import cap_text, decode_raw_entries, entry_bytes, sent_fields
from ..core.sharding import TRANSIENT_ERRORS, recover, stream_client
from ..core.stream import MAX_REASON_CHARS, Entry, GroupConsumer, SideRetention, dead_letter, default_consumer_name, parse_id
from ..core.wire import CONFLICT_PREFIX, NATURAL_KEY, DeadLetter, DecodedBatch, conflict_letters, conflicting_rows, decode_entries, dedupe
from ..stores.contract import StreamPosition, TickStore

log = logging.getLogger(__name__)


@dataclass
class Commit:
    """What one durable write did; handed to observers (metrics)."""

    group: str
    entries: int
    rows: int
    added: int
    dead: int
    write_seconds: float
    committed_at: float
    batch: pa.Table


#: Redis errors that mean "the server is unreachable or stalled": retried, never fatal.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError)


@dataclass
class ArchiverOptions:
    batch_size: int = 5000  # stream entries (a v2 entry carries many trades)
    batch_max_bytes: int = 4 << 20  # a batch stops growing once its entries hold this many bytes
    max_wait_ms: int = 0  # >0: gather reads up to batch_size or this long before writing
    block_ms: int = 200
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    dlq_retention: SideRetention = field(default_factory=SideRetention)


@dataclass
class Archiver:
    consumer: GroupConsumer
    store: TickStore
    dlq_stream: str
    options: ArchiverOptions = field(default_factory=ArchiverOptions)
    observers: list[Callable[[Commit], None]] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    _entry_bytes_estimate: int = 0  # bytes per entry of the last read (0: none yet); sizes the next read

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> int:
        """Loop until stopped. Returns 0 after a clean stop, 75 if it stopped with a batch unwritten."""
        self._call_with_retry("prepare the store", self.store.init)
        self._call_with_retry("create consumer group", self.consumer.ensure_group)
        log.info("archiver %s started (stream %s, consumer %s)", self.store.name, self.consumer.stream, self.consumer.consumer)
        while not self.stop_event.is_set():
            entries = self._gather()
            if not entries:
                continue
            if not self.process(entries):
                log.warning("archiver %s stopping with %d entries unwritten; they stay pending", self.store.name, len(entries))
                return 75
        log.info("archiver %s stopped cleanly", self.store.name)
        return 0

    def run_until_idle(self, idle_reads: int = 2) -> None:
        """Process everything currently in the stream, then return (tests, demo, rebuild)."""
        self.store.init()
        self.consumer.ensure_group()
        empty = 0
        while empty < idle_reads and not self.stop_event.is_set():
            entries = self._gather()
            if entries:
                empty = 0
                if not self.process(entries):
                    return
            else:
                empty += 1

    def _gather(self) -> list[Entry]:
        """One batch: up to ``batch_size`` entries and about ``batch_max_bytes``. Each read asks
        for as many entries as the bytes left allow at the size of the entries read last (the
        first read of an archiver at most 16), so a batch overshoots the bound by at most one
        read whose entries grew."""
        options = self.options
        entries: list[Entry] = []
        size = 0
        deadline = time.monotonic() + options.max_wait_ms / 1000
        block: int | None = options.block_ms
        while not self.stop_event.is_set():
            want = options.batch_size - len(entries)
            estimate = self._entry_bytes_estimate or max(1, options.batch_max_bytes // 16)
            count = max(1, min(want, (options.batch_max_bytes - size) // estimate))
            more = self._read(count, block)
            if not more:
                break
            got = sum(entry_bytes(flat) for _, flat in more)
            self._entry_bytes_estimate = max(1, got // len(more))
            entries.extend(more)
            size += got
            if len(entries) >= options.batch_size or size >= options.batch_max_bytes:
                break
            if options.max_wait_ms <= 0:
                if len(more) < count:  # the stream had no more right now
                    break
                block = None
            else:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    break
                block = min(left_ms, options.block_ms)
        return entries

    def _read(self, count: int, block_ms: int | None) -> list[Entry]:
        try:
            return self.consumer.read(count, block_ms)
        except REDIS_DOWN + TRANSIENT_ERRORS as exc:  # a lost or stalled Redis, and a cluster failing over
            log.error(
                "archiver %s: Redis unreachable or not answering (%s: %s); retrying — check TICKVAULT_REDIS_URL / the Redis server",
                self.store.name, type(exc).__name__, cap_text(str(exc), MAX_REASON_CHARS),
            )
            self.consumer.reclaim_now()
            recover(self.consumer.client)
            self.stop_event.wait(1.0)
            return []

    def process(self, entries: list[Entry]) -> bool:
        """Write one batch durably, dead-letter the invalid entries, then ack all. False if stopped unwritten."""
        decoded: DecodedBatch = decode_raw_entries(entries)
        batch = dedupe(decoded.table)
        position = StreamPosition(self.consumer.stream, self.consumer.group, max((entry_id for entry_id, _ in entries), key=parse_id))
        started = time.perf_counter()
        added = self._call_with_retry(
            f"write {batch.num_rows} ticks",
            lambda: self.store.write(batch, position) if batch.num_rows else 0,
        )
        if added is None:
            return False
        if added < batch.num_rows:  # some keys were stored already: a redelivery, or a conflict
            judged = self._call_with_retry("compare with the stored ticks", lambda: self._judge_by_store(entries, decoded, batch))
            if judged is None:
                return False
            decoded = judged
        write_seconds = time.perf_counter() - started
        ok = self._call_with_retry(
            "dead-letter + ack",
            lambda: self._finish(entries, decoded),
        )
        if ok is None:
            return False
        commit = Commit(
            group=self.consumer.group,
            entries=len(entries),
            rows=batch.num_rows,
            added=added,
            dead=len(decoded.dead),
            write_seconds=write_seconds,
            committed_at=time.time(),
            batch=batch,
        )
        for observer in self.observers:
            try:
                observer(commit)
            except Exception:  # an observer must never stop archiving
                log.exception("archiver observer failed")
        return True

    def _judge_by_store(self, entries: list[Entry], decoded: DecodedBatch, batch: pa.Table) -> DecodedBatch:
        """Once the batch is written, the store's value of a key is the one that stays: entries that
        differ from it are dead letters, entries equal to it are not — also an entry the batch's
        decode refused because an earlier entry of the batch held its key with other values (an
        identical redelivery of the stored tick next to a conflicting copy)."""
        stored_conflicts = self._stored_conflicts(entries, decoded, batch)
        in_batch = [n for n, d in enumerate(decoded.dead) if d.reason.startswith(CONFLICT_PREFIX)]
        equal = self._equal_to_stored([decoded.dead[n] for n in in_batch]) if in_batch else set()
        redelivered = {in_batch[p] for p in equal}
        dead = [d for n, d in enumerate(decoded.dead) if n not in redelivered]
        return DecodedBatch(decoded.table, decoded.ids, dead + stored_conflicts)

    def _equal_to_stored(self, letters: list[DeadLetter]) -> set[int]:
        """Positions in ``letters`` of the refused trades the store holds exactly as sent."""
        refused = decode_entries([(str(n), d.fields) for n, d in enumerate(letters)])
        stored = self.store.rows_with_keys(refused.table)
        if stored.num_rows == 0:
            return set()
        held = {tuple(r[k] for k in NATURAL_KEY): (r["price"], r["volume"], r["side"]) for r in stored.to_pylist()}
        return {int(n) for n, r in zip(refused.ids, refused.table.to_pylist())
                if held.get(tuple(r[k] for k in NATURAL_KEY)) == (r["price"], r["volume"], r["side"])}

    def _stored_conflicts(self, entries: list[Entry], decoded: DecodedBatch, batch: pa.Table) -> list[DeadLetter]:
        """Dead letters for entries whose key the store holds with other trade values (the store keeps its own)."""
        stored = self.store.rows_with_keys(batch)
        pairs = conflicting_rows(decoded.table, stored)
        if pairs:
            log.warning("archiver %s: %d conflicting duplicate(s): same key as a stored tick, other price/volume/side; "
                        "dead-lettered with both values", self.store.name, len(pairs))
        return conflict_letters(decoded.table, decoded.ids, stored, pairs, [f"the {self.store.name} store"] * len(pairs),
                                sent_fields(entries))

    def _finish(self, entries: list[Entry], decoded: DecodedBatch) -> bool:
        if decoded.dead:
            for letter in decoded.dead[:3]:
                log.warning("dead letter %s%s: %s", letter.entry_id, "" if letter.index is None else f" row {letter.index}",
                            cap_text(letter.reason, MAX_REASON_CHARS))
            dead_letter(self.consumer.client, self.dlq_stream, decoded.dead, stage=f"archive-{self.store.name}",
                        retention=self.options.dlq_retention)
        self.consumer.ack([entry_id for entry_id, _ in entries])
        return True

    def _call_with_retry(self, what: str, fn: Callable[[], object]):
        """Retry with jittered exponential backoff until it works or the archiver is stopped."""
        delay = self.options.retry_initial_s
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - every failure of a store is retried, never dropped
                attempt += 1
                if self.stop_event.is_set():
                    log.error("archiver %s: %s failed (%s) and a stop was requested; leaving it pending", self.store.name, what, exc)
                    return None
                log.error(
                    "archiver %s: %s failed (attempt %d: %s: %s); retrying in %.1fs — nothing is acked until it succeeds",
                    self.store.name, what, attempt, type(exc).__name__,
                    cap_text(str(exc).strip().splitlines()[0], MAX_REASON_CHARS) if str(exc).strip() else "", delay,
                )
                self.stop_event.wait(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, self.options.retry_max_s)


def build_archiver(settings: Settings, which: str, consumer: str | None = None) -> Archiver:
    """One archiver for group ``which`` ("hot" or "cold") with the settings' batch sizes."""
    store: TickStore
    retention = SideRetention(settings.dlq_max_entries, settings.dlq_max_age_days)
    if which == "hot":
        from ..stores.hot import HotStore

        store = HotStore(settings)
        options = ArchiverOptions(
            batch_size=settings.hot_batch_size, batch_max_bytes=settings.hot_batch_max_bytes, block_ms=settings.block_ms,
            retry_max_s=settings.retry_max_s, dlq_retention=retention,
        )
    else:
        from ..stores.lake import Lake

        store = Lake(settings)
        options = ArchiverOptions(
            batch_size=settings.cold_batch_size,
            batch_max_bytes=settings.cold_batch_max_bytes,
            max_wait_ms=settings.cold_max_wait_ms,
            block_ms=settings.block_ms,
            retry_max_s=settings.retry_max_s,
            dlq_retention=retention,
        )
    group_consumer = GroupConsumer(
        stream_client(settings, raw=True), settings.stream, which, consumer or default_consumer_name(which),
        claim_idle_ms=settings.claim_idle_ms,
    )
    return Archiver(group_consumer, store, settings.dlq_stream, options)


def install_signal_handlers(stop: Callable[[], None]) -> None:
    """SIGTERM/SIGINT: finish the batch in hand, ack, exit 0."""

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s received: finishing the current batch", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
