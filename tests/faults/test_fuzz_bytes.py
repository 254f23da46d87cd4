"""Byte-level fuzzing: entries no text client could even read, mixed with valid v1 entries and v2 frames.

hypothesis breaks valid entries at the byte level — a value or a name that is not UTF-8, NUL
bytes, a field name given twice, a 100 kB value, a frame of random bytes or cut short, a frame
with bad trades inside. Both archiver processes must keep running and dead-letter exactly
what is broken (per entry, or per trade of a frame with its row index), keep the bytes of what
did not decode recoverable in base64, and store exactly the valid ticks in both stores.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pyarrow as pa
import redis
from faultkit import assert_truth, drain_with_archivers, record, scale, truth_check
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from factories import DAY
from tickvault.core.config import Settings
from tickvault.core.frames import encode_frame
from tickvault.core.wire import WireEncoder
from tickvault.dev.simulate import generate_day


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


not_utf8 = st.binary(min_size=1, max_size=30).filter(_not_utf8)

#: (kind, payload): each turns a valid v1 entry (a flat list of bytes) into a broken one.
BREAKAGES = st.one_of(
    st.tuples(st.just("value not utf-8"), st.tuples(st.integers(0, 8), not_utf8)),
    st.tuples(st.just("name not utf-8"), st.tuples(st.integers(0, 8), not_utf8)),
    st.tuples(st.just("nul"), st.tuples(st.sampled_from([b"symbol", b"price", b"source", b"ts"]), st.integers(0, 5))),
    st.tuples(st.just("duplicate name"), st.tuples(st.integers(0, 8), st.binary(max_size=10))),
    st.tuples(st.just("huge value"), st.sampled_from([b"symbol", b"price", b"source", b"side"])),
    st.tuples(st.just("random frame"), st.binary(max_size=200)),
    st.tuples(st.just("cut frame"), st.integers(1, 400)),
)


def break_entry(flat: list[bytes], frame: bytes, kind: str, payload: object) -> list[bytes]:
    out = list(flat)
    if kind == "value not utf-8":
        at, data = payload
        out[2 * (at % (len(out) // 2)) + 1] = data
    elif kind == "name not utf-8":
        at, data = payload
        out[2 * (at % (len(out) // 2))] = data
    elif kind == "nul":
        name, at = payload
        i = out.index(name) + 1
        out[i] = out[i][:at] + b"\x00" + out[i][at:]
    elif kind == "duplicate name":
        at, data = payload
        out += [out[2 * (at % (len(out) // 2))], data]
    elif kind == "huge value":
        i = out.index(payload) + 1
        out[i] = b"7" * 100_000
    elif kind == "random frame":
        out = [b"v", b"2", b"frame", payload]
    elif kind == "cut frame":
        out = [b"v", b"2", b"frame", frame[: max(1, len(frame) - int(payload))]]
    return out


def generate_broken(count: int) -> list[tuple[str, object]]:
    drawn: list[tuple[str, object]] = []

    @hsettings(max_examples=200, database=None, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.lists(BREAKAGES, min_size=20, max_size=20))
    def collect(items: list[tuple[str, object]]) -> None:
        drawn.extend(items)

    while len(drawn) < count:
        collect()
    return drawn[:count]


def test_byte_level_fuzz_with_v1_and_v2_mixed(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    truth = generate_day(DAY, symbols=5, ticks=scale(10_000, 100_000), seed=71)
    encoder = WireEncoder(truth)
    valid = [[part.encode() for kv in encoder.fields(i).items() for part in kv] for i in range(truth.num_rows)]
    sample_frame = encode_frame(truth.slice(0, 20))
    broken = generate_broken(scale(1_000, 5_000))
    rng = random.Random(71)

    # valid ticks: every third block of 50 as one v2 frame, the rest as v1 entries
    entries: list[list[bytes]] = []
    for start in range(0, truth.num_rows, 50):
        if (start // 50) % 3 == 2:
            entries.append([b"v", b"2", b"frame", encode_frame(truth.slice(start, 50))])
        else:
            entries.extend(valid[start : start + 50])
    # frames with bad trades inside: rows 1 and 3 refused, the others are truth rows again (redelivered)
    bad_rows = {}
    for _ in range(scale(20, 100)):
        rows = truth.slice(rng.randrange(truth.num_rows - 5), 5).to_pylist()
        rows[1] = dict(rows[1], volume=0)
        rows[3] = dict(rows[3], symbol="BAD")
        entries.append([b"v", b"2", b"frame", encode_frame(pa.Table.from_pylist(rows, schema=truth.schema))])
        bad_rows[len(entries) - 1] = {"1", "3"}
    broken_at = set()
    for kind, payload in broken:
        entries.append(break_entry(rng.choice(valid), sample_frame, kind, payload))
        broken_at.add(len(entries) - 1)
    order = list(range(len(entries)))
    rng.shuffle(order)
    pipe = rclient.pipeline(transaction=False)
    for i in order:
        pipe.execute_command("XADD", settings.stream, "*", *entries[i])
    ids = dict(zip(order, pipe.execute()))

    drain_with_archivers(settings, rclient, tmp_path, "hostile bytes")

    expected = {(ids[i], None) for i in broken_at} | {(ids[i], row) for i, rows in bad_rows.items() for row in rows}
    letters = [f for _, f in rclient.xrange(settings.dlq_stream)]
    for stage in ("archive-hot", "archive-cold"):
        mine = [f for f in letters if f["stage"] == stage]
        assert {(f["entry_id"], f.get("index")) for f in mine} == expected, stage
        assert len(mine) == len(expected), stage
    by_id = {f["entry_id"]: f for f in letters if f.get("encoding") == "base64"}
    restored = 0
    for i in broken_at:
        letter = by_id.get(ids[i])
        if letter is not None:  # not UTF-8, duplicated names, frames: the exact bytes come back
            kept = [base64.b64decode(letter[f"f.{n}.{part}"]) for n in range(len(entries[i]) // 2) for part in ("name", "value")]
            assert kept == entries[i]
            restored += 1
    assert restored > 0
    assert all(len(f["reason"]) <= 400 for f in letters)
    report = truth_check(settings, truth, tmp_path)
    record("byte-level fuzz, v1 and v2 frames mixed", report, len(entries), len(broken) + len(bad_rows), "hostile entries",
           dead_lettered_per_group=len(expected), restored_from_base64=restored)
    assert_truth(report)
