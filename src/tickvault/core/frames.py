"""Raw stream entries -> ticks: per-field decoding of v1 entries and the v2 frame format. No I/O.

The archivers read entries as bytes (a field that is not UTF-8 must not stop a group), so this
module is the one place that turns bytes into text or Arrow columns:

- **v1** (``v=1``): one trade per entry, flat text fields (``core.wire``).
- **v2** (``v=2``, ``frame=<bytes>``): many trades per entry, the ``frame`` field holding one
  Arrow IPC stream (schema + record batches) with the columns of ``TICK_SCHEMA``. Frames are
  decoded straight to Arrow and validated column-wise: no Python object per trade.

Whatever does not decode (bytes that are not UTF-8, a field name given twice, a frame that is
not Arrow) becomes a dead letter holding the original bytes base64-encoded; a bad trade inside
a frame is dead-lettered alone, naming the entry id and its row index, and the rest lands.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from .wire import (
    MAX_FUTURE,
    PRICE_TYPE,
    SOURCE_RE,
    SYMBOL_RE,
    TICK_SCHEMA,
    TS_MAX,
    TS_MIN,
    TS_TYPE,
    VENUES,
    WIRE_FIELDS,
    WIRE_VERSION,
    DeadLetter,
    DecodedBatch,
    decode_entries,
    format_price,
    refuse_conflicts,
)

FRAME_VERSION = "2"
#: (stream id, [name, value, name, value, ...]) exactly as Redis returned them.
RawEntry = tuple[str, list[bytes]]

#: Columns a frame must carry; ``side`` and ``received_at`` may be left out (null).
FRAME_REQUIRED = ("venue", "symbol", "ts", "price", "volume", "cum_volume", "source")
FRAME_OPTIONAL = ("side", "received_at")
MAX_INT = 10**18  # v1 integers have at most 18 digits; frames hold the same domain
#: The IPC end-of-stream marker a frame must end with: a frame cut at a message boundary would
#: otherwise read as a shorter, valid frame and its last trades would vanish unnoticed.
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
REASON_VALUE_CHARS = 60  # a value quoted in a reason is cut here: the dead letter holds it in full once

_V1_NAMES = frozenset(name.encode() for name in WIRE_FIELDS)
_V2_NAMES = frozenset({b"v", b"frame"})


def encode_frame(table: pa.Table) -> bytes:
    """A TICK_SCHEMA table as the bytes of one v2 ``frame`` field (an Arrow IPC stream)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, TICK_SCHEMA) as writer:
        writer.write_table(table.cast(TICK_SCHEMA))
    return bytes(sink.getvalue())


def frame_fields(table: pa.Table) -> dict[str, str | bytes]:
    """The fields of one v2 entry carrying every row of ``table``."""
    return {"v": FRAME_VERSION, "frame": encode_frame(table)}


def split_frames(table: pa.Table, max_trades: int, max_bytes: int) -> Iterator[pa.Table]:
    """``table`` in consecutive slices of at most ``max_trades`` rows and about ``max_bytes``."""
    if table.num_rows == 0:
        return
    row_bytes = max(1, table.nbytes // table.num_rows)
    rows = max(1, min(max_trades, max_bytes // row_bytes))
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def fields_to_table(entries: Sequence[dict[str, str]]) -> pa.Table | None:
    """v1 field dicts (a collector's parsed message) as a TICK_SCHEMA table, or None when any
    value does not convert losslessly (the caller then publishes them as v1 entries and the
    archivers dead-letter what is wrong, with the reason)."""
    decoded = decode_entries([(str(i), fields) for i, fields in enumerate(entries)])
    if decoded.dead or decoded.table.num_rows != len(entries):
        return None
    return decoded.table


def decode_raw_entries(entries: Sequence[RawEntry], now: datetime | None = None) -> DecodedBatch:
    """The archivers' decoder: v1 and v2 entries mixed, in stream order, into one batch."""
    now = now or datetime.now(UTC)
    tables: list[pa.Table] = []
    ids: list[str] = []
    dead: list[DeadLetter] = []
    text_run: list[tuple[str, dict[str, str]]] = []

    def flush_text() -> None:
        if text_run:
            for decoded in _decode_text_run(text_run, now):
                tables.append(decoded.table)
                ids.extend(decoded.ids)
                dead.extend(decoded.dead)
            text_run.clear()

    for entry_id, flat in entries:
        outcome = _split_entry(entry_id, flat)
        if isinstance(outcome, DeadLetter):
            dead.append(outcome)
        elif isinstance(outcome, bytes):
            flush_text()
            try:
                table, letters = decode_frame(entry_id, outcome, now)
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the group either
                table, letters = TICK_SCHEMA.empty_table(), [raw_letter(entry_id, flat, _crash(exc))]
            tables.append(table)
            ids.extend([entry_id] * table.num_rows)
            dead.extend(letters)
        else:
            text_run.append((entry_id, outcome))
    flush_text()
    table = pa.concat_tables(tables) if tables else TICK_SCHEMA.empty_table()
    return refuse_conflicts(DecodedBatch(table, ids, dead), sent_fields(entries))  # across frames and v1 runs too


def _decode_text_run(run: list[tuple[str, dict[str, str]]], now: datetime) -> list[DecodedBatch]:
    """v1 entries as one batch; should validation itself fail (a bug, not a bad value), entry by
    entry, so that only the entry that trips it is dead-lettered."""
    try:
        return [decode_entries(run, now)]
    except Exception:  # noqa: BLE001 - see below: the entry that trips it is named
        out = []
        for entry_id, fields in run:
            try:
                out.append(decode_entries([(entry_id, fields)], now))
            except Exception as exc:  # noqa: BLE001 - kept in the dead-letter stream with the error
                out.append(DecodedBatch(TICK_SCHEMA.empty_table(), [], [DeadLetter(entry_id, fields, _crash(exc))]))
        return out


def _crash(exc: Exception) -> str:
    return f"could not be validated ({type(exc).__name__}: {cap_text(str(exc), 200)}); report this entry as a tickvault bug"


def entry_bytes(flat: Sequence[bytes]) -> int:
    """The size of an entry's names and values (what a batch's byte bound counts)."""
    return sum(len(part) for part in flat)


def _split_entry(entry_id: str, flat: list[bytes]) -> DeadLetter | bytes | dict[str, str]:
    """A v1 entry as text fields, a v2 entry as its frame bytes, or a dead letter."""
    if len(flat) % 2:
        return raw_letter(entry_id, flat, "malformed entry (odd number of name/value parts)")
    names = flat[0::2]
    if len(set(names)) != len(names):
        repeated = sorted({_label(n) for n in names if names.count(n) > 1})
        return raw_letter(entry_id, flat, f"field name(s) {', '.join(repeated)} given more than once; refused (an entry names each field once)")
    values = dict(zip(names, flat[1::2], strict=True))
    if values.get(b"v") == FRAME_VERSION.encode():
        if set(names) != _V2_NAMES:
            extra = sorted(_label(n) for n in set(names) - _V2_NAMES)
            missing = sorted(_label(n) for n in _V2_NAMES - set(names))
            why = f"a v2 entry has exactly the fields v and frame (missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'})"
            text = _as_text(values)
            return raw_letter(entry_id, flat, why) if text is None else DeadLetter(entry_id, text, why)
        return values[b"frame"]
    fields: dict[str, str] = {}
    for name, value in values.items():
        try:
            fields[name.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            return raw_letter(entry_id, flat, f"field {_label(name)} is not valid UTF-8 (byte {exc.start})")
    return fields


def _as_text(values: dict[bytes, bytes]) -> dict[str, str] | None:
    """Names and values as text, or None when any is not UTF-8."""
    try:
        return {name.decode("utf-8"): value.decode("utf-8") for name, value in values.items()}
    except UnicodeDecodeError:
        return None


def _label(name: bytes) -> str:
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return "<a name that is not UTF-8>"
    return repr(cap_text(text))


def raw_letter(entry_id: str, flat: Sequence[bytes], why: str, index: int | None = None) -> DeadLetter:
    """A dead letter that keeps every name and value of the entry base64-encoded, in order."""
    fields = {}
    for n in range(0, len(flat) - 1, 2):
        fields[f"{n // 2}.name"] = base64.b64encode(flat[n]).decode("ascii")
        fields[f"{n // 2}.value"] = base64.b64encode(flat[n + 1]).decode("ascii")
    if len(flat) % 2:
        fields[f"{len(flat) // 2}.name"] = base64.b64encode(flat[-1]).decode("ascii")
    reason = f"{why}; the original bytes are kept base64-encoded (f.<n>.name / f.<n>.value, in entry order)"
    return DeadLetter(entry_id, fields, reason, index=index, encoding="base64")


def cap_text(text: str, limit: int = REASON_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"


# --- v2 frames


def decode_frame(entry_id: str, data: bytes, now: datetime) -> tuple[pa.Table, list[DeadLetter]]:
    """One frame -> (valid rows as TICK_SCHEMA, a dead letter per refused row or for the frame)."""
    try:
        if not data.endswith(END_OF_STREAM):
            raise ValueError("truncated: the Arrow IPC stream does not end with the end-of-stream marker")
        table = _conformed(pa.ipc.open_stream(pa.py_buffer(data)).read_all())
    except (pa.ArrowException, ValueError) as exc:
        flat = [b"v", FRAME_VERSION.encode(), b"frame", data]
        return TICK_SCHEMA.empty_table(), [raw_letter(entry_id, flat, f"frame: {cap_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 200)}")]
    checks = _row_checks(table, now)
    ok = checks[0][1]
    for _, passed in checks[1:]:
        ok = pc.and_(ok, passed)
    ok = ok.fill_null(False)
    if pc.all(ok).as_py() in (True, None):
        return table.cast(TICK_SCHEMA), []
    bad = pc.indices_nonzero(pc.invert(ok)).to_pylist()
    letters = []
    for index in bad:
        row = table.slice(index, 1)
        why = next(reason for reason, passed in checks if not passed[index].as_py())
        letters.append(DeadLetter(entry_id, _row_text(row), f"frame row {index}: {why}", index=index))
    return table.filter(ok).cast(TICK_SCHEMA), letters


def _conformed(table: pa.Table) -> pa.Table:
    """The frame's columns as TICK_SCHEMA (missing optional columns null); refuses what
    cannot be cast losslessly, naive timestamps and float prices."""
    names = set(table.column_names)
    missing = [c for c in FRAME_REQUIRED if c not in names]
    extra = sorted(names - set(TICK_SCHEMA.names))
    if missing or extra:
        raise ValueError(f"columns missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'} (see docs/wire-format.md, v2)")
    columns = []
    for target in TICK_SCHEMA:
        if target.name not in names:
            columns.append(pa.nulls(table.num_rows, target.type))
            continue
        column = table.column(target.name)
        if pa.types.is_timestamp(target.type) and not (pa.types.is_timestamp(column.type) and column.type.tz is not None):
            raise ValueError(f"column {target.name} is {column.type}; want a timestamp with a time zone (UTC)")
        if target.type == PRICE_TYPE and not pa.types.is_decimal(column.type):
            raise ValueError(f"column price is {column.type}; want decimal128(18, 4)")
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column.cast(target.type, safe=True))
    side_at = TICK_SCHEMA.get_field_index("side")
    side = columns[side_at]
    columns[side_at] = pc.if_else(pc.equal(side, ""), pa.scalar(None, pa.string()), side)  # '' = unknown, as in v1
    fields = [pa.field(f.name, f.type) for f in TICK_SCHEMA]  # nullable while checking
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _row_checks(table: pa.Table, now: datetime) -> list[tuple[str, pa.ChunkedArray]]:
    """(reason, passed per row) in the order v1 validation checks the same rules."""
    col = table.column
    zero = pa.scalar(Decimal(0), PRICE_TYPE)
    return [
        *[(f"{name}: missing (null)", pc.is_valid(col(name))) for name in FRAME_REQUIRED],
        (f"venue: want {' or '.join(VENUES)}", pc.is_in(col("venue"), pa.array(VENUES))),
        ("symbol: want 6 chars [0-9A-Z] (the plain code; the venue column names the venue)",
         pc.match_substring_regex(col("symbol"), SYMBOL_RE.pattern)),
        ("ts: more than a day in the future", pc.less_equal(col("ts"), pa.scalar(now + MAX_FUTURE, TS_TYPE))),
        (f"ts: outside the accepted range {RANGE_TEXT}", _in_range(col("ts"))),
        (f"received_at: outside the accepted range {RANGE_TEXT}",
         pc.or_kleene(pc.is_null(col("received_at")), _in_range(col("received_at")))),
        ("price: must be > 0", pc.greater(col("price"), zero)),
        ("volume: must be > 0", pc.greater(col("volume"), 0)),
        (f"volume: must be < {MAX_INT}", pc.less(col("volume"), MAX_INT)),
        (f"cum_volume: must be < {MAX_INT}", pc.less(col("cum_volume"), MAX_INT)),
        ("cum_volume < volume", pc.greater_equal(col("cum_volume"), col("volume"))),
        ("side: want 'B', 'S' or null", pc.or_kleene(pc.is_null(col("side")), pc.is_in(col("side"), pa.array(["B", "S"])))),
        ("source: want a short lowercase name", pc.match_substring_regex(col("source"), SOURCE_RE.pattern)),
    ]


RANGE_TEXT = f"{TS_MIN:%Y-%m-%d} .. {TS_MAX:%Y-%m-%d} UTC"


def _in_range(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.and_(pc.greater_equal(values, pa.scalar(TS_MIN, TS_TYPE)), pc.less(values, pa.scalar(TS_MAX, TS_TYPE)))


def _row_text(row: pa.Table) -> dict[str, str]:
    """One frame row as v1 text fields (what a dead letter keeps; replayable by hand as v1)."""
    values = row.to_pylist()[0]
    out = {"v": WIRE_VERSION}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            out[name] = value.isoformat()
        elif isinstance(value, Decimal):
            out[name] = format_price(value)
        else:
            out[name] = str(value)
    return out


def frame_rows_as_fields(frame: bytes) -> list[dict[str, str]]:
    """Every row of a frame as v1 text fields (tools and tests that inspect a stream)."""
    table = _conformed(pa.ipc.open_stream(pa.py_buffer(frame)).read_all())
    return [_row_text(table.slice(i, 1)) for i in range(table.num_rows)]


def sent_fields(entries: Iterable[RawEntry]) -> dict[str, dict[str, str]]:
    """The v1 entries among ``entries`` as sent, by id (what a conflict's dead letter keeps)."""
    out: dict[str, dict[str, str]] = {}
    for entry_id, flat in entries:
        outcome = _split_entry(entry_id, flat)
        if isinstance(outcome, dict):
            out[entry_id] = outcome
    return out


def entries_as_fields(entries: Iterable[RawEntry]) -> list[dict[str, str]]:
    """Raw entries as v1 text fields, one per trade (frames expanded); for inspection."""
    out: list[dict[str, str]] = []
    for entry_id, flat in entries:
        outcome = _split_entry(entry_id, flat)
        if isinstance(outcome, bytes):
            out.extend(frame_rows_as_fields(outcome))
        elif isinstance(outcome, dict):
            out.append(outcome)
    return out


__all__ = [
    "FRAME_VERSION",
    "RawEntry",
    "cap_text",
    "decode_frame",
    "decode_raw_entries",
    "encode_frame",
    "entries_as_fields",
    "entry_bytes",
    "fields_to_table",
    "frame_fields",
    "raw_letter",
    "sent_fields",
    "split_frames",
]
