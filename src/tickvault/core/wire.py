"""The tick, its wire format (v1) and its validation. No I/O here.

A tick's identity is (symbol, ts, cum_volume): Korean feeds carry no trade id and
several identical trades may share a second, but the cumulative day volume is strictly
increasing per symbol and day. Every store writes idempotently on that key.

Batches travel as Arrow tables (``TICK_SCHEMA``) rather than lists of objects: the
archivers handle hundreds of thousands of ticks per second and millions of live Python
objects slow the whole process down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute

from .errors import InvalidTick

#: Korea Standard Time as the fixed UTC+9 it has been since 1988. Inside the accepted time range
#: (``TS_MIN`` .. ``TS_MAX``) it equals Asia/Seoul; a fixed offset makes every date computed from it
#: agree with the stores' plain ``+ 9 h`` arithmetic (``core.calendar.trading_date``).
KST = timezone(timedelta(hours=9), "KST")
WIRE_VERSION = "1"

#: The venues a trade can execute on. Each keeps its own cumulative day volume per symbol. A new
#: venue is added here and given its sessions in sessions.toml.
Venue = Literal["KRX", "NXT"]
VENUES: tuple[Venue, ...] = ("KRX", "NXT")
DEFAULT_VENUE: Venue = "KRX"  # a wire entry without ``venue`` (every v1 producer before NXT)

PRICE_PRECISION = 18
PRICE_SCALE = 4
PRICE_TYPE = pa.decimal128(PRICE_PRECISION, PRICE_SCALE)
TS_TYPE = pa.timestamp("us", tz="UTC")

#: Column order shared by the hot table, the lake table, exports and batches.
TICK_SCHEMA = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),  # 'KRX' or 'NXT'
        pa.field("symbol", pa.string(), nullable=False),  # the plain 6-character code on every venue
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("price", PRICE_TYPE, nullable=False),
        pa.field("volume", pa.int64(), nullable=False),
        pa.field("cum_volume", pa.int64(), nullable=False),
        pa.field("side", pa.string()),  # 'B', 'S' or null (unknown)
        pa.field("source", pa.string(), nullable=False),
        pa.field("received_at", TS_TYPE),
    ]
)
NATURAL_KEY: tuple[str, ...] = ("venue", "symbol", "ts", "cum_volume")
#: The stored trade columns two ticks of one natural key must agree on (``source`` and
#: ``received_at`` say how a copy arrived, not what traded). The stores' fingerprints cover them.
TRADE_COLUMNS: tuple[str, ...] = ("price", "volume", "side")

REQUIRED_FIELDS = frozenset({"v", "symbol", "ts", "price", "volume", "cum_volume", "source"})
OPTIONAL_FIELDS = frozenset({"side", "received_at", "venue"})
WIRE_FIELDS = REQUIRED_FIELDS | OPTIONAL_FIELDS

#: A stored symbol: the plain KRX short code, the same on every venue.
SYMBOL_RE = re.compile(r"^[0-9A-Z]{6}$")
#: A symbol as producers may spell it on the wire: Kiwoom's ``_NX`` suffix names the NXT venue.
WIRE_SYMBOL_RE = re.compile(r"^([0-9A-Z]{6})(_[0-9A-Z]{2})?$")
SUFFIX_VENUES: dict[str, Venue] = {"_NX": "NXT"}
SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
INT_RE = re.compile(r"^[0-9]{1,18}$")
MAX_FUTURE = timedelta(days=1)
#: The instants a tick's ``ts`` and ``received_at`` may take, [TS_MIN, TS_MAX): every store can
#: write them and Asia/Seoul is UTC+9 throughout (docs/wire-format.md, "Time range").
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)
MAX_PRICE = Decimal(10) ** (PRICE_PRECISION - PRICE_SCALE)


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade. Used at the edges (collectors, simulator, tests), not in bulk paths."""

    symbol: str
    ts: datetime
    price: Decimal
    volume: int
    cum_volume: int
    side: str | None = None
    source: str = "unknown"
    received_at: datetime | None = None
    venue: Venue = DEFAULT_VENUE

    @property
    def key(self) -> tuple[str, str, datetime, int]:
        return (self.venue, self.symbol, self.ts, self.cum_volume)

    def to_fields(self) -> dict[str, str]:
        """Wire format v1: flat string fields."""
        fields = {
            "v": WIRE_VERSION,
            "venue": self.venue,
            "symbol": self.symbol,
            "ts": self.ts.isoformat(),
            "price": format_price(self.price),
            "volume": str(self.volume),
            "cum_volume": str(self.cum_volume),
            "side": self.side or "",
            "source": self.source,
        }
        if self.received_at is not None:
            fields["received_at"] = self.received_at.isoformat()
        return fields


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry refused by validation, kept with everything needed to replay it by hand."""

    entry_id: str
    fields: Mapping[str, str]
    reason: str
    index: int | None = None  # the trade's row in a v2 frame
    encoding: str = "text"  # "base64": names and values are base64 of bytes that did not decode


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    table: pa.Table  # TICK_SCHEMA, in stream order, may still hold duplicates
    ids: list[str]  # stream ids of the rows of ``table``
    dead: list[DeadLetter]


def format_price(price: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (62700, 1234.5)."""
    text = format(price.normalize(), "f")
    return text


def _parse_time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidTick(f"{name}: unparseable time {text!r} (want ISO-8601 with offset)") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTick(f"{name}: time {text!r} has no UTC offset (want e.g. +09:00)")
    if not TS_MIN <= value < TS_MAX:
        raise InvalidTick(f"{name}: {text!r} is outside the accepted range {TS_MIN:%Y-%m-%d} .. {TS_MAX:%Y-%m-%d} UTC")
    return value


def _parse_int(text: str, name: str) -> int:
    if not INT_RE.fullmatch(text):
        raise InvalidTick(f"{name}: not a non-negative integer: {text!r}")
    return int(text)


def parse_price(text: str) -> Decimal:
    try:
        price = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidTick(f"price: not a decimal number: {text!r}") from None
    if not price.is_finite():
        raise InvalidTick(f"price: not a finite number: {text!r}")
    if price <= 0:
        raise InvalidTick(f"price: must be > 0, got {text!r}")
    if price >= MAX_PRICE:
        raise InvalidTick(f"price: too large: {text!r}")
    if price.as_tuple().exponent < -PRICE_SCALE and price != price.quantize(Decimal(1).scaleb(-PRICE_SCALE)):
        raise InvalidTick(f"price: more than {PRICE_SCALE} decimal places: {text!r}")
    return price


def parse_fields(fields: Mapping[str, str], now: datetime) -> Tick:
    """Validate one wire entry. Raises InvalidTick with an operator-readable reason."""
    missing = REQUIRED_FIELDS - fields.keys()
    if missing:
        raise InvalidTick(f"missing field(s): {', '.join(sorted(missing))}")
    if fields["v"] != WIRE_VERSION:
        raise InvalidTick(f"unknown wire version {fields['v']!r} (this tickvault reads v{WIRE_VERSION})")
    extra = fields.keys() - WIRE_FIELDS
    if extra:
        raise InvalidTick(f"unexpected field(s): {', '.join(sorted(extra))}")
    venue, symbol = parse_venue_symbol(fields.get("venue", ""), fields["symbol"])
    ts = _parse_time(fields["ts"], "ts")
    if ts - now > MAX_FUTURE:
        raise InvalidTick(f"ts: {fields['ts']} is more than a day in the future")
    price = parse_price(fields["price"])
    volume = _parse_int(fields["volume"], "volume")
    if volume <= 0:
        raise InvalidTick(f"volume: must be > 0, got {fields['volume']!r}")
    cum_volume = _parse_int(fields["cum_volume"], "cum_volume")
    if cum_volume < volume:
        raise InvalidTick(f"cum_volume {cum_volume} < volume {volume}")
    side = fields.get("side", "")
    if side not in ("B", "S", ""):
        raise InvalidTick(f"side: want 'B', 'S' or empty, got {side!r}")
    source = fields["source"]
    if not SOURCE_RE.fullmatch(source):
        raise InvalidTick(f"source: want a short lowercase name, got {source!r}")
    received_raw = fields.get("received_at", "")
    received_at = _parse_time(received_raw, "received_at") if received_raw else None
    return Tick(symbol, ts, price, volume, cum_volume, side or None, source, received_at, venue)


def parse_venue_symbol(venue: str, symbol: str) -> tuple[Venue, str]:
    """The venue and plain code of a wire entry: ``venue`` when given (absent = KRX), a Kiwoom
    ``_NX`` suffix means NXT; ``_AL`` (Kiwoom's smart order routing) and any other suffix are
    refused — a trade executes on one venue, and the stores keep each venue's own volume."""
    match = WIRE_SYMBOL_RE.fullmatch(symbol)
    if match is None:
        raise InvalidTick(f"symbol: want 6 chars [0-9A-Z] (optionally with _NX), got {symbol!r}")
    code, suffix = match.group(1), match.group(2)
    if suffix == "_AL":
        raise InvalidTick(f"symbol: {symbol!r} is Kiwoom's smart-order-routing code, not a venue; publish each trade with "
                          "the venue that executed it (venue=KRX or NXT)")
    if suffix is not None and suffix not in SUFFIX_VENUES:
        raise InvalidTick(f"symbol: unknown suffix {suffix!r} in {symbol!r} (only _NX, meaning venue NXT)")
    by_suffix = SUFFIX_VENUES.get(suffix or "")
    if venue and venue not in VENUES:
        raise InvalidTick(f"venue: want {' or '.join(VENUES)}, got {venue!r}")
    if venue and by_suffix and venue != by_suffix:
        raise InvalidTick(f"venue {venue!r} contradicts the symbol {symbol!r} (whose suffix means {by_suffix})")
    return venue or by_suffix or DEFAULT_VENUE, code  # type: ignore[return-value]  # checked against VENUES


def decode_entries(entries: Sequence[tuple[str, Mapping[str, str]]], now: datetime | None = None) -> DecodedBatch:
    """Stream entries -> an Arrow batch of valid ticks plus dead letters for the rest.

    The archivers' hot path: a vectorised check-and-cast over the whole batch, accepting a
    strict subset of what ``parse_fields`` accepts. Any batch with an entry outside that
    subset (a bad entry, or an unusual spelling such as ``1E+3``) takes the per-entry path,
    which decides exactly and names the reason.
    """
    now = now or datetime.now(UTC)
    decoded = _decode_fast(entries, now) or _decode_slow(entries, now)
    return refuse_conflicts(decoded, dict(entries))


def conflicting_rows(table: pa.Table, other: pa.Table) -> list[tuple[int, int]]:
    """(row of ``table``, row of ``other``) pairs with the same natural key and different trade
    columns (price, volume or side)."""
    if table.num_rows == 0 or other.num_rows == 0:
        return []
    pc = pa.compute
    key = list(NATURAL_KEY)
    left = table.select(key + list(TRADE_COLUMNS)).append_column("_l", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    right = other.select(key + list(TRADE_COLUMNS)).rename_columns(key + [f"_o_{c}" for c in TRADE_COLUMNS])
    right = right.append_column("_r", pa.array(np.arange(other.num_rows, dtype=np.int64)))
    joined = left.join(right, keys=key, join_type="inner", use_threads=False)
    if joined.num_rows == 0:
        return []
    differ = pc.or_(
        pc.not_equal(joined.column("price"), joined.column("_o_price")),
        pc.or_(pc.not_equal(joined.column("volume"), joined.column("_o_volume")),
               pc.not_equal(joined.column("side").fill_null(""), joined.column("_o_side").fill_null(""))),
    )
    hits = joined.filter(differ)
    return sorted(zip(hits.column("_l").to_pylist(), hits.column("_r").to_pylist()))


def describe_key(table: pa.Table, row: int) -> str:
    """One row's natural key as text."""
    r = table.slice(row, 1).to_pylist()[0]
    return f"{r['venue']} {r['symbol']} ts {r['ts'].isoformat()} cum_volume {r['cum_volume']}"


def describe_trade(table: pa.Table, row: int) -> str:
    """One row's trade columns as text."""
    r = table.slice(row, 1).to_pylist()[0]
    return f"price {format_price(r['price'])} volume {r['volume']} side {r['side'] or '-'}"


#: how every conflicting-duplicate dead letter's reason starts
CONFLICT_PREFIX = "conflicting duplicate of "


def conflict_letters(table: pa.Table, ids: Sequence[str], kept: pa.Table, pairs: Sequence[tuple[int, int]],
                     holders: Sequence[str], sent: Mapping[str, Mapping[str, str]] | None = None) -> list[DeadLetter]:
    """Dead letters for rows of ``table`` (with stream ``ids``) that conflict with rows of ``kept``
    (``pairs`` from ``conflicting_rows``; ``holders`` names who holds each kept row): the letter
    holds the entry as sent (``sent``: v1 entries' fields by id) or else the trade as v1 fields, the reason
    both values and which one stays."""
    encoder = WireEncoder(table)
    return [
        DeadLetter(ids[i], dict(sent[ids[i]]) if sent and ids[i] in sent else encoder.fields(i),
                   f"{CONFLICT_PREFIX}{describe_key(table, i)}: {holder} holds {describe_trade(kept, k)}, this entry "
                   f"{describe_trade(table, i)} — the held value is kept (docs/sync.md, conflicting duplicates)")
        for (i, k), holder in zip(pairs, holders)
    ]


def refuse_conflicts(decoded: DecodedBatch, sent: Mapping[str, Mapping[str, str]] | None = None) -> DecodedBatch:
    """Refuse every row whose natural key an earlier row of the batch holds with other trade values."""
    table = decoded.table
    if table.num_rows < 2:
        return decoded
    key = list(NATURAL_KEY)
    indexed = table.select(key).append_column("_i", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    first = indexed.group_by(key, use_threads=False).aggregate([("_i", "min")]).column("_i_min")
    if len(first) == table.num_rows:
        return decoded
    firsts = table.take(first)
    first_rows = first.to_pylist()
    pairs = [(i, j) for i, j in conflicting_rows(table, firsts) if i != first_rows[j]]
    if not pairs:
        return decoded
    ids = decoded.ids
    letters = conflict_letters(table, ids, firsts, pairs, [f"entry {ids[first_rows[j]]}" for _, j in pairs], sent)
    refused = np.zeros(table.num_rows, dtype=bool)
    refused[[i for i, _ in pairs]] = True
    keep = pa.array(~refused)
    return DecodedBatch(table.filter(keep), [i for i, r in zip(ids, refused) if not r], decoded.dead + letters)


_TS_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([+-][0-9]{2}:[0-9]{2}|Z)$"
_PRICE_PATTERN = r"^[0-9]{1,14}(\.[0-9]{1,4})?$"
_INT_PATTERN = r"^[0-9]{1,18}$"


def _all_match(values: pa.Array, pattern: str) -> bool:
    return pa.compute.all(pa.compute.match_substring_regex(values, pattern)).as_py() is True


def _in_time_range(values: pa.Array) -> bool:
    """Every instant within [TS_MIN, TS_MAX) (true for an empty array)."""
    pc = pa.compute
    inside = pc.and_(pc.greater_equal(values, pa.scalar(TS_MIN, TS_TYPE)), pc.less(values, pa.scalar(TS_MAX, TS_TYPE)))
    return pc.all(inside).as_py() is not False


def _decode_fast(entries: Sequence[tuple[str, Mapping[str, str]]], now: datetime) -> DecodedBatch | None:
    if not entries:
        return DecodedBatch(TICK_SCHEMA.empty_table(), [], [])
    for _, fields in entries:
        keys = fields.keys()
        if not (REQUIRED_FIELDS <= keys <= WIRE_FIELDS) or fields["v"] != WIRE_VERSION:
            return None
    pc = pa.compute
    try:
        venue = pa.array([f.get("venue") or DEFAULT_VENUE for _, f in entries], pa.string())
        symbol = pa.array([f["symbol"] for _, f in entries], pa.string())
        ts_text = pa.array([f["ts"] for _, f in entries], pa.string())
        price_text = pa.array([f["price"] for _, f in entries], pa.string())
        volume_text = pa.array([f["volume"] for _, f in entries], pa.string())
        cum_text = pa.array([f["cum_volume"] for _, f in entries], pa.string())
        side = pa.array([f.get("side") or None for _, f in entries], pa.string())
        source = pa.array([f["source"] for _, f in entries], pa.string())
        received_text = pa.array([f.get("received_at") or None for _, f in entries], pa.string())
        if not (
            pc.all(pc.is_in(venue, pa.array(VENUES))).as_py()
            and _all_match(symbol, SYMBOL_RE.pattern)
            and _all_match(source, SOURCE_RE.pattern)
            and _all_match(ts_text, _TS_PATTERN)
            and _all_match(price_text, _PRICE_PATTERN)
            and _all_match(volume_text, _INT_PATTERN)
            and _all_match(cum_text, _INT_PATTERN)
            and (side.null_count == len(side) or pc.all(pc.is_in(side.drop_null(), pa.array(["B", "S"]))).as_py())
            and (received_text.null_count == len(received_text) or _all_match(received_text.drop_null(), _TS_PATTERN))
        ):
            return None
        ts = ts_text.cast(TS_TYPE)
        price = price_text.cast(PRICE_TYPE)
        volume = volume_text.cast(pa.int64())
        cum_volume = cum_text.cast(pa.int64())
        received_at = received_text.cast(TS_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    limit = pa.scalar(now + MAX_FUTURE, TS_TYPE)
    ok = pc.and_(
        pc.and_(pc.greater(price, pa.scalar(Decimal(0), PRICE_TYPE)), pc.greater(volume, 0)),
        pc.and_(pc.greater_equal(cum_volume, volume), pc.less_equal(ts, limit)),
    )
    if not (pc.all(ok).as_py() and _in_time_range(ts) and _in_time_range(received_at.drop_null())):
        return None
    table = pa.Table.from_arrays([venue, symbol, ts, price, volume, cum_volume, side, source, received_at], schema=TICK_SCHEMA)
    return DecodedBatch(table, [entry_id for entry_id, _ in entries], [])


def _decode_slow(entries: Sequence[tuple[str, Mapping[str, str]]], now: datetime) -> DecodedBatch:
    venues: list[str] = []
    symbols: list[str] = []
    stamps: list[datetime] = []
    prices: list[Decimal] = []
    volumes: list[int] = []
    cums: list[int] = []
    sides: list[str | None] = []
    sources: list[str] = []
    received: list[datetime | None] = []
    ids: list[str] = []
    dead: list[DeadLetter] = []
    for entry_id, fields in entries:
        try:
            tick = parse_fields(fields, now)
        except InvalidTick as exc:
            dead.append(DeadLetter(entry_id, dict(fields), str(exc)))
            continue
        ids.append(entry_id)
        venues.append(tick.venue)
        symbols.append(tick.symbol)
        stamps.append(tick.ts)
        prices.append(tick.price)
        volumes.append(tick.volume)
        cums.append(tick.cum_volume)
        sides.append(tick.side)
        sources.append(tick.source)
        received.append(tick.received_at)
    table = pa.table(
        [venues, symbols, stamps, prices, volumes, cums, sides, sources, received],
        schema=TICK_SCHEMA,
    )
    return DecodedBatch(table, ids, dead)


def table_problems(table: pa.Table, now: datetime | None = None) -> list[str | None]:
    """Per row of a TICK_SCHEMA table, the first rule of the wire format it breaks (None: valid).

    The same rules as ``parse_fields``, on whole columns: the check every copy between stores,
    recovery and user upserts go through (``stores.contract.conform``)."""
    pc = pa.compute
    limit = (now or datetime.now(UTC)) + MAX_FUTURE
    ts, received = table.column("ts"), table.column("received_at")
    side = table.column("side")

    def in_range(values: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.and_(pc.greater_equal(values, pa.scalar(TS_MIN, TS_TYPE)), pc.less(values, pa.scalar(TS_MAX, TS_TYPE)))

    rules: list[tuple[str, pa.ChunkedArray]] = [
        (f"venue: want {' or '.join(VENUES)}", pc.is_in(table.column("venue"), pa.array(VENUES))),
        ("symbol: want 6 chars [0-9A-Z]", pc.match_substring_regex(table.column("symbol"), SYMBOL_RE.pattern)),
        (f"ts: outside the accepted range {TS_MIN:%Y-%m-%d} .. {TS_MAX:%Y-%m-%d} UTC", in_range(ts)),
        ("ts: more than a day in the future", pc.less_equal(ts, pa.scalar(limit, TS_TYPE))),
        ("price: must be > 0", pc.greater(table.column("price"), pa.scalar(Decimal(0), PRICE_TYPE))),
        ("volume: must be > 0", pc.greater(table.column("volume"), 0)),
        ("cum_volume < volume", pc.greater_equal(table.column("cum_volume"), table.column("volume"))),
        ("side: want 'B', 'S' or empty", pc.or_kleene(pc.is_null(side), pc.is_in(side, pa.array(["B", "S"])))),
        ("source: want a short lowercase name", pc.match_substring_regex(table.column("source"), SOURCE_RE.pattern)),
        (f"received_at: outside the accepted range {TS_MIN:%Y-%m-%d} .. {TS_MAX:%Y-%m-%d} UTC",
         pc.or_kleene(pc.is_null(received), in_range(received))),
    ]
    problems: list[str | None] = [None] * table.num_rows
    for reason, ok in rules:
        bad = np.flatnonzero(~np.asarray(ok.fill_null(False), dtype=bool))
        for row in bad:
            if problems[row] is None:
                problems[row] = reason
    return problems


def ticks_to_table(ticks: Iterable[Tick]) -> pa.Table:
    """Tick objects -> TICK_SCHEMA table (tests, recovery, collectors)."""
    rows = list(ticks)
    return pa.table(
        [
            [t.venue for t in rows],
            [t.symbol for t in rows],
            [t.ts for t in rows],
            [t.price for t in rows],
            [t.volume for t in rows],
            [t.cum_volume for t in rows],
            [t.side for t in rows],
            [t.source for t in rows],
            [t.received_at for t in rows],
        ],
        schema=TICK_SCHEMA,
    )


class WireEncoder:
    """Rows of a TICK_SCHEMA table as wire-format v1 fields, without per-row datetime work (the
    simulator, replay and tests publish millions of rows); ``Tick.to_fields`` is the per-object
    twin. ``source`` replaces every row's source (replay publishes as ``replay``)."""

    def __init__(self, table: pa.Table, source: str | None = None):
        self.venue = table.column("venue").to_pylist()
        self.symbol = table.column("symbol").to_pylist()
        ts_s = table.column("ts").cast(pa.int64()).to_numpy() // 1_000_000
        self.ts_s = ts_s
        recv = table.column("received_at").cast(pa.int64()).fill_null(-1).to_numpy()
        self.recv_s = np.where(recv >= 0, recv // 1_000_000, -1)
        self.recv_us = np.where(recv >= 0, recv % 1_000_000, 0)
        self.price = _price_text(table)
        self.volume = table.column("volume").to_numpy().astype(str).tolist()
        self.cum_volume = table.column("cum_volume").to_numpy().astype(str).tolist()
        self.side = [s or "" for s in table.column("side").to_pylist()]
        self.source = [source] * table.num_rows if source else table.column("source").to_pylist()
        self._second_text: dict[int, str] = {}

    def _kst(self, epoch_s: int) -> str:
        text = self._second_text.get(epoch_s)
        if text is None:
            text = datetime.fromtimestamp(epoch_s, KST).strftime("%Y-%m-%dT%H:%M:%S")
            self._second_text[epoch_s] = text
        return text

    def fields(self, row: int) -> dict[str, str]:
        out = {
            "v": WIRE_VERSION,
            "venue": self.venue[row],
            "symbol": self.symbol[row],
            "ts": self._kst(int(self.ts_s[row])) + "+09:00",
            "price": self.price[row],
            "volume": self.volume[row],
            "cum_volume": self.cum_volume[row],
            "side": self.side[row],
            "source": self.source[row],
        }
        if self.recv_s[row] >= 0:
            out["received_at"] = f"{self._kst(int(self.recv_s[row]))}.{int(self.recv_us[row]):06d}+09:00"
        return out


def _price_text(table: pa.Table) -> list[str]:
    """Exact decimal text (62700, 1234.5): integral prices take the fast path."""
    pc = pa.compute
    prices = table.column("price")
    as_int = pc.cast(prices, pa.int64(), safe=False)
    wide = pa.decimal128(PRICE_PRECISION + 5, PRICE_SCALE)
    if pc.all(pc.equal(pc.cast(as_int, wide), pc.cast(prices, wide))).as_py() in (True, None):
        return as_int.to_numpy().astype(str).tolist()
    return [format_price(p) for p in prices.to_pylist()]


def dedupe(table: pa.Table) -> pa.Table:
    """Keep the first row of each natural key (a batch may carry redelivered duplicates)."""
    if table.num_rows < 2:
        return table
    # np.arange, not range(): a Python range is converted int by int (~35 ms per 50k rows, twice per cold batch)
    indexed = table.select(list(NATURAL_KEY)).append_column("_i", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    first = indexed.group_by(list(NATURAL_KEY), use_threads=False).aggregate([("_i", "min")])
    if first.num_rows == table.num_rows:
        return table
    keep = pa.compute.sort_indices(first.column("_i_min"))
    return table.take(pa.compute.take(first.column("_i_min"), keep))
