"""Wire format v2 frames and the raw-entry decoder (no I/O): v1 and v2 decode to the same rows,
a bad trade inside a frame is refused alone, a frame that is not Arrow is kept in base64."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from factories import DAY, interleaved_ticks
from tickvault.core.frames import decode_raw_entries, encode_frame, entries_as_fields, split_frames
from tickvault.core.wire import TICK_SCHEMA, WireEncoder

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _flat(fields: dict[str, str | bytes]) -> list[bytes]:
    return [part if isinstance(part, bytes) else part.encode() for kv in fields.items() for part in kv]


def _frame_entry(entry_id: str, frame: bytes) -> tuple[str, list[bytes]]:
    return entry_id, [b"v", b"2", b"frame", frame]


def test_v1_and_v2_entries_decode_to_the_same_rows_in_stream_order() -> None:
    table = interleaved_ticks(30, day=DAY)
    encoder = WireEncoder(table)
    v1 = [(f"{i + 1}-0", _flat(encoder.fields(i))) for i in range(10)]
    v2 = [_frame_entry("11-0", encode_frame(table.slice(10, 15)))]
    tail = [(f"{i + 2}-0", _flat(encoder.fields(i))) for i in range(25, 30)]
    decoded = decode_raw_entries(v1 + v2 + tail, NOW)
    assert decoded.dead == []
    assert decoded.table.equals(table)
    assert decoded.ids == [f"{i + 1}-0" for i in range(10)] + ["11-0"] * 15 + [f"{i + 2}-0" for i in range(25, 30)]


def test_a_bad_trade_in_a_frame_is_refused_alone_naming_entry_and_row() -> None:
    table = interleaved_ticks(6, day=DAY)
    rows = table.to_pylist()
    rows[1]["price"] = Decimal(0)
    rows[3]["symbol"] = "00593"
    rows[4]["volume"] = rows[4]["cum_volume"] + 1
    rows[5]["side"] = "X"
    bad = pa.Table.from_pylist(rows, schema=TICK_SCHEMA)
    decoded = decode_raw_entries([_frame_entry("7-3", encode_frame(bad))], NOW)
    assert decoded.table.equals(table.take([0, 2]))
    reasons = {letter.index: letter.reason for letter in decoded.dead}
    assert set(reasons) == {1, 3, 4, 5} and all(letter.entry_id == "7-3" for letter in decoded.dead)
    assert "price: must be > 0" in reasons[1] and "symbol" in reasons[3]
    assert "cum_volume < volume" in reasons[4] and "side" in reasons[5]
    letter = next(letter for letter in decoded.dead if letter.index == 1)
    assert letter.fields["price"] == "0" and letter.fields["v"] == "1"  # the trade as v1 text, replayable by hand


def test_frames_refused_whole_keep_their_bytes() -> None:
    table = interleaved_ticks(3, day=DAY)
    naive = table.set_column(2, "ts", table.column("ts").cast(pa.timestamp("us")))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, naive.schema) as writer:
        writer.write_table(naive)
    cases = {
        "not arrow": b"\x00garbage",
        "naive ts": bytes(sink.getvalue()),
        "missing venue": _ipc(table.drop_columns(["venue"])),
        "float price": _ipc(table.set_column(3, "price", table.column("price").cast(pa.float64()))),
    }
    for why, frame in cases.items():
        decoded = decode_raw_entries([_frame_entry("1-0", frame)], NOW)
        assert decoded.table.num_rows == 0, why
        [letter] = decoded.dead
        assert letter.encoding == "base64" and letter.reason.startswith("frame:"), why
        assert base64.b64decode(letter.fields["1.value"]) == frame, why


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def test_a_frame_without_optional_columns_and_with_empty_side_decodes() -> None:
    table = interleaved_ticks(4, day=DAY)
    lean = table.drop_columns(["received_at"]).set_column(6, "side", pa.array(["", "B", None, "S"]))
    decoded = decode_raw_entries([_frame_entry("1-0", _ipc(lean))], NOW)
    assert decoded.dead == []
    assert decoded.table.column("side").to_pylist() == [None, "B", None, "S"]
    assert decoded.table.column("received_at").null_count == 4


@pytest.mark.parametrize("extra", [[b"symbol", b"005930"], [b"v", b"2"]])
def test_a_v2_entry_has_exactly_v_and_frame(extra: list[bytes]) -> None:
    entry_id, flat = _frame_entry("1-0", encode_frame(interleaved_ticks(2, day=DAY)))
    decoded = decode_raw_entries([(entry_id, flat + extra)], NOW)
    assert decoded.table.num_rows == 0 and len(decoded.dead) == 1


def test_split_frames_bounds_trades_and_bytes() -> None:
    table = interleaved_ticks(2500, day=DAY)
    by_trades = list(split_frames(table, 1000, 1 << 30))
    assert [t.num_rows for t in by_trades] == [1000, 1000, 500]
    by_bytes = list(split_frames(table, 1000, 10_000))
    assert max(t.num_rows for t in by_bytes) * (table.nbytes // table.num_rows) <= 10_000
    assert pa.concat_tables(by_bytes).equals(table)


def test_entries_as_fields_expands_frames_to_v1_text() -> None:
    table = interleaved_ticks(3, day=DAY)
    rows = entries_as_fields([_frame_entry("1-0", encode_frame(table))])
    assert [r["cum_volume"] for r in rows] == [str(c) for c in table.column("cum_volume").to_pylist()]


def test_an_entry_that_trips_the_validator_itself_is_dead_lettered_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A validator bug (an exception that is not a refusal) costs the one entry, not the group."""
    from tickvault.core import frames, wire

    table = interleaved_ticks(3, day=DAY)
    encoder = WireEncoder(table)
    real = wire.decode_entries

    def fragile(entries, now=None):  # trips on one particular entry, like an unforeseen input would
        if any(entry_id == "2-0" for entry_id, _ in entries):
            raise ArithmeticError("boom")
        return real(entries, now)

    monkeypatch.setattr(frames, "decode_entries", fragile)
    decoded = decode_raw_entries([(f"{i + 1}-0", _flat(encoder.fields(i))) for i in range(3)], NOW)
    assert decoded.ids == ["1-0", "3-0"]
    [letter] = decoded.dead
    assert letter.entry_id == "2-0" and "ArithmeticError: boom" in letter.reason


def test_a_frame_cut_at_a_message_boundary_is_refused_not_shortened() -> None:
    table = interleaved_ticks(10, day=DAY)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, TICK_SCHEMA) as writer:
        writer.write_table(table.slice(0, 5))
        writer.write_table(table.slice(5))
    whole = bytes(sink.getvalue())
    assert decode_raw_entries([_frame_entry("1-0", whole)], NOW).table.num_rows == 10
    first_batch_only = _ipc(table.slice(0, 5))[:-8]  # schema + first batch, no end marker
    cut = whole[: len(first_batch_only)]
    assert pa.ipc.open_stream(cut).read_all().num_rows == 5  # Arrow itself would read it as valid
    decoded = decode_raw_entries([_frame_entry("1-0", cut)], NOW)
    assert decoded.table.num_rows == 0 and "truncated" in decoded.dead[0].reason


def test_frame_trades_outside_the_time_range_are_refused_alone() -> None:
    table = interleaved_ticks(3, day=DAY)
    rows = table.to_pylist()
    rows[0]["ts"] = datetime(1987, 6, 1, 3, 0, tzinfo=UTC)  # Asia/Seoul had summer time then
    rows[2]["received_at"] = datetime(2100, 1, 1, tzinfo=UTC)
    decoded = decode_raw_entries([_frame_entry("9-0", encode_frame(pa.Table.from_pylist(rows, schema=TICK_SCHEMA)))], NOW)
    assert decoded.table.equals(table.take([1]))
    reasons = {letter.index: letter.reason for letter in decoded.dead}
    assert set(reasons) == {0, 2}
    assert "ts: outside" in reasons[0] and "received_at: outside" in reasons[2]


def test_a_conflicting_duplicate_across_a_frame_and_a_v1_entry_is_refused() -> None:
    table = interleaved_ticks(4, day=DAY)
    rows = table.to_pylist()
    rows[0]["price"] = rows[0]["price"] + 1  # same key as the frame's first trade, another price
    other = pa.Table.from_pylist(rows[:1], schema=TICK_SCHEMA)
    entries = [_frame_entry("1-0", encode_frame(table)), ("2-0", _flat(WireEncoder(other).fields(0)))]
    decoded = decode_raw_entries(entries, NOW)
    assert decoded.table.equals(table)  # the first value stays
    assert [letter.entry_id for letter in decoded.dead] == ["2-0"]
    assert "conflicting duplicate" in decoded.dead[0].reason and decoded.dead[0].fields["price"] == WireEncoder(other).fields(0)["price"]


def test_a_text_entry_with_v2_but_other_fields_keeps_its_fields_as_text() -> None:
    fields = dict(WireEncoder(interleaved_ticks(1, day=DAY)).fields(0), v="2")
    [letter] = decode_raw_entries([("1-0", _flat(fields))], NOW).dead
    assert letter.encoding == "text" and letter.fields == fields and "exactly the fields v and frame" in letter.reason
