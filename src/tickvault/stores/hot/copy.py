"""Arrow batch -> PostgreSQL binary COPY stream, vectorised with numpy.

psycopg's ``write_row`` would build Python objects for every tick; here every column is
encoded as whole arrays (FINDINGS: ~1.3M rows/s). Prices travel as their exact scaled
integer (``price_e4`` = price x 10^4, the unscaled value of decimal128(18,4)) and become
``numeric`` inside PostgreSQL with exact arithmetic, so the binary numeric format is never
needed and no float ever touches a price.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ...core.wire import PRICE_TYPE, TICK_SCHEMA, TS_TYPE

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
#: microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC)
PG_EPOCH_US = 946_684_800_000_000

#: staging columns, in COPY order (write.sql: create_stage, copy_stage)
STAGE_COLUMNS = ("venue", "symbol", "ts", "price_e4", "volume", "cum_volume", "side", "source", "received_at")


def _nulls(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_null(), dtype=bool)


def _int64_field(values: np.ndarray, nulls: np.ndarray | None) -> tuple[str, np.ndarray, np.ndarray | None]:
    return ("i8", values.astype(">i8", copy=False), nulls)


def _text_field(arr: pa.Array) -> tuple[str, tuple[np.ndarray, np.ndarray], np.ndarray]:
    arr = arr.cast(pa.string())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype="<i4", count=arr.offset + n + 1)[arr.offset :]
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return ("text", (offsets, data[offsets[0] : offsets[-1]]), _nulls(arr))


def _columns(batch: pa.Table) -> list[tuple[str, object, np.ndarray | None]]:
    """The staging columns of a conformed batch (``stores.contract.conform``: TICK_SCHEMA, required set)."""
    cols = {name: batch.column(name).combine_chunks() for name in TICK_SCHEMA.names}
    ts = cols["ts"].cast(TS_TYPE)
    price = cols["price"].cast(PRICE_TYPE)
    received = cols["received_at"].cast(TS_TYPE)
    # decimal128 is 16-byte little-endian two's complement; precision 18 fits the low 8 bytes.
    price_e4 = np.frombuffer(price.buffers()[1], dtype="<i8", count=2 * (price.offset + len(price)))[2 * price.offset :: 2]
    received_nulls = _nulls(received)
    received_us = np.asarray(received.cast(pa.int64()).fill_null(0), dtype=np.int64) - PG_EPOCH_US
    return [
        _text_field(cols["venue"]),
        _text_field(cols["symbol"]),
        _int64_field(np.asarray(ts.cast(pa.int64()), dtype=np.int64) - PG_EPOCH_US, None),
        _int64_field(price_e4, None),
        _int64_field(np.asarray(cols["volume"].cast(pa.int64()), dtype=np.int64), None),
        _int64_field(np.asarray(cols["cum_volume"].cast(pa.int64()), dtype=np.int64), None),
        _text_field(cols["side"]),
        _text_field(cols["source"]),
        _int64_field(received_us, received_nulls if received_nulls.any() else None),
    ]


def encode_binary_copy(batch: pa.Table) -> bytes:
    """The whole COPY ... (FORMAT binary) payload for the staging table, header to trailer."""
    n = batch.num_rows
    columns = _columns(batch)
    field_lens = []  # bytes per row of each field, including its 4-byte length word
    for kind, payload, nulls in columns:
        if kind == "i8":
            lens = np.full(n, 12, dtype=np.int64)
        else:
            offsets, _ = payload
            lens = 4 + np.diff(offsets).astype(np.int64)
        if nulls is not None:
            lens = np.where(nulls, 4, lens)
        field_lens.append(lens)
    row_lens = 2 + np.sum(field_lens, axis=0) if n else np.zeros(0, np.int64)
    row_starts = len(HEADER) + np.concatenate(([0], np.cumsum(row_lens)[:-1])) if n else np.zeros(0, np.int64)
    total = len(HEADER) + int(row_lens.sum()) + len(TRAILER)
    buf = np.zeros(total, dtype=np.uint8)
    buf[: len(HEADER)] = np.frombuffer(HEADER, np.uint8)
    buf[total - 2 :] = 0xFF
    if n == 0:
        return buf.tobytes()
    # tuple header: number of fields
    _scatter(buf, row_starts, np.full(n, len(columns), dtype=">i2").view(np.uint8).reshape(n, 2))
    pos = row_starts + 2
    for (kind, payload, nulls), lens in zip(columns, field_lens):
        length_word = lens - 4
        if nulls is not None:
            length_word = np.where(nulls, -1, length_word)
        _scatter(buf, pos, length_word.astype(">i4").view(np.uint8).reshape(n, 4))
        data_pos = pos + 4
        if kind == "i8":
            values = payload if nulls is None else payload[~nulls]
            where = data_pos if nulls is None else data_pos[~nulls]
            _scatter(buf, where, np.ascontiguousarray(values).view(np.uint8).reshape(-1, 8))
        else:
            offsets, data = payload
            sizes = np.diff(offsets).astype(np.int64)
            if data.size:
                rel = (offsets[:-1] - offsets[0]).astype(np.int64)
                dest = np.repeat(data_pos - rel, sizes) + np.arange(data.size, dtype=np.int64)
                buf[dest] = data
        pos = pos + lens
    return buf.tobytes()


def _scatter(buf: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    if len(starts):
        buf[starts[:, None] + np.arange(rows.shape[1])] = rows

