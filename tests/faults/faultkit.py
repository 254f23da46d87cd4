"""Shared plumbing of the fault-injection suite: scale, a publisher that survives a Redis
restart, archiver processes, and the truth check every scenario ends with.

The truth check is the one of tests/test_ingest_e2e.py (helpers.export): each
store is exported through `tickvault export` and compared with the simulator's truth.
Before the equality assertion it counts what was lost, duplicated or unexpected, so a
failure says how bad it is and the results table (``TICKVAULT_FAULT_REPORT``) holds the
measured figures, not assumed zeros.

Modes: short (CI) by default; ``TICKVAULT_SOAK=1`` multiplies rounds and ticks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis

# The shared test helpers (tests/ is on sys.path: pytest puts the rootdir conftest's directory there).
from factories import DAY
from helpers import export, sort_key, subprocess_env
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.frames import frame_fields, split_frames
from tickvault.core.stream import group_info
from tickvault.core.wire import KST, NATURAL_KEY, WireEncoder
from tickvault.dev.simulate import wire_order
from tickvault.services.sync import verify

SOAK = os.environ.get("TICKVAULT_SOAK", "") not in ("", "0")
MODE = "soak" if SOAK else "short"


def scale(short: int, soak: int) -> int:
    """The figure for the current mode (short in CI, soak with TICKVAULT_SOAK=1)."""
    return soak if SOAK else short


# --- publishing -------------------------------------------------------------------------


@dataclass
class PublishStats:
    entries: int = 0  # stream entries acknowledged by Redis (re-sent chunks counted again)
    retried_chunks: int = 0
    seconds: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


class RetryingPublisher:
    """Publishes a day's wire entries in chunks, retrying a chunk until Redis acknowledges it.

    A chunk that failed half-way (Redis went down mid-pipeline) is sent again whole: some
    entries then appear twice in the stream, which the stores' idempotent upsert absorbs.
    That is exactly what a real collector does, so the truth check covers it.

    Every ``frames_every``-th chunk goes out as v2 frames of ``frame_trades`` trades (0: v1
    only), so each scenario runs with v1 entries and v2 frames mixed in one stream.
    """

    def __init__(self, url: str, stream: str, chunk: int = 500, frames_every: int = 2, frame_trades: int = 100):
        self.url = url
        self.stream = stream
        self.chunk = chunk
        self.frames_every = frames_every
        self.frame_trades = frame_trades
        self.stats = PublishStats()

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)

    def send(self, entries: list[Mapping[str, str]]) -> None:
        client = self._client()
        try:
            for start in range(0, len(entries), self.chunk):
                self._send_chunk(client, entries[start : start + self.chunk])
        finally:
            client.close()

    def _send_chunk(self, client: redis.Redis, chunk: list[Mapping[str, str | bytes]]) -> None:
        while True:
            try:
                pipe = client.pipeline(transaction=False)
                for fields in chunk:
                    pipe.xadd(self.stream, dict(fields))
                pipe.execute()
                self.stats.entries += len(chunk)
                return
            except (redis.ConnectionError, redis.TimeoutError):
                self.stats.retried_chunks += 1
                time.sleep(0.2)

    def publish_day(self, truth: pa.Table, *, rate: float | None = None, dup_rate: float = 0.01,
                    shuffle_window: int = 50, seed: int = 0, stop: threading.Event | None = None) -> None:
        """Send the ticks of ``truth`` (with re-sent duplicates and local shuffling) at ``rate``/s,
        until all are sent or ``stop`` is set; ``sent_truth`` then gives what was really sent."""
        encoder = WireEncoder(truth)
        self.order = wire_order(truth.num_rows, dup_rate, shuffle_window, seed)
        self.sent_rows = 0
        started = time.monotonic()
        client = self._client()
        try:
            for number, start in enumerate(range(0, len(self.order), self.chunk)):
                if stop is not None and stop.is_set():
                    break
                rows = self.order[start : start + self.chunk]
                if self.frames_every and number % self.frames_every == 1:
                    frames = split_frames(truth.take(pa.array(rows)), self.frame_trades, 1 << 20)
                    self._send_chunk(client, [frame_fields(frame) for frame in frames])
                else:
                    self._send_chunk(client, [encoder.fields(int(i)) for i in rows])
                self.sent_rows = start + len(rows)
                if rate:
                    wait = started + self.sent_rows / rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
        finally:
            client.close()
            self.stats.seconds = time.monotonic() - started
            self.stats.done.set()

    def sent_truth(self, truth: pa.Table) -> pa.Table:
        """The distinct ticks among the entries actually published."""
        return truth.take(np.unique(self.order[: self.sent_rows]))

    def start_day(self, truth: pa.Table, **kwargs: object) -> threading.Thread:
        thread = threading.Thread(target=self.publish_day, args=(truth,), kwargs=kwargs, daemon=True)
        thread.start()
        return thread


# --- archiver processes -----------------------------------------------------------------


def archiver_env(s: Settings, **extra: object) -> dict[str, str]:
    env = subprocess_env(s)
    env.update(
        TICKVAULT_RETRY_MAX_S=str(s.retry_max_s),
        TICKVAULT_COLD_MAX_WAIT_MS=str(s.cold_max_wait_ms),
        TICKVAULT_CLAIM_IDLE_MS=str(s.claim_idle_ms),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ArchiverProcess:
    """One `tickvault archive <group>` child process with a stable consumer name and a log."""

    def __init__(self, s: Settings, group: str, log: Path, consumer: str = "fault"):
        self.settings = s
        self.group = group
        self.log = log
        self.consumer = consumer
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0

    def start(self) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        # Output goes through a pipe copied by a thread, not straight to a file: a child under a
        # file-size limit (the disk-full test) must still be able to log its errors.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickvault.cli", "archive", self.group, "--consumer", self.consumer],
            env=archiver_env(self.settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._copier = threading.Thread(target=self._copy_output, args=(self.proc,), daemon=True)
        self._copier.start()
        self.starts += 1

    def _copy_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self.log, "ab") as out:
            for line in proc.stdout:
                out.write(line)
                out.flush()

    def new_output(self) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_started(self, timeout: float = 60) -> None:
        """Until the archiver logged its start (connected, group ensured, reading)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"archiver {self.group} started" in self.new_output():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"archiver {self.group} exited {self.proc.returncode}:\n{self.new_output()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"archiver {self.group} did not start in {timeout}s:\n{self.new_output()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._copier.join(10)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM: finish the batch in hand, ack, exit (0 expected)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
            self._copier.join(10)
            return code
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"archiver {self.group} ignored SIGTERM for {timeout}s:\n{self.log.read_text()[-3000:]}") from None


def drain_with_archivers(s: Settings, client: redis.Redis, logs: Path, what: str) -> None:
    """Run both archivers (child processes) until they drained the stream; each must still be
    running then (``what`` names the input they must survive) and stop cleanly."""
    archivers = [ArchiverProcess(s, g, logs / f"{g}.log") for g in ("hot", "cold")]
    for a in archivers:
        a.start()
    try:
        wait_drained(client, s, ("hot", "cold"))
        assert all(a.proc is not None and a.proc.poll() is None for a in archivers), f"an archiver stopped on {what}"
    finally:
        codes = [a.stop() for a in archivers]
    assert codes == [0, 0], codes


def wait_drained(client: redis.Redis, s: Settings, groups: tuple[str, ...], timeout: float = 180) -> None:
    """Until every named group has read everything and holds nothing pending."""
    deadline = time.monotonic() + timeout
    info: dict = {}
    while time.monotonic() < deadline:
        try:
            info = group_info(client, s.stream)
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.2)
            continue
        if all(g in info and info[g]["lag"] == 0 and info[g]["pending"] == 0 for g in groups):
            return
        time.sleep(0.2)
    raise AssertionError(f"stream not drained in {timeout}s: {info}")


def in_flight(client: redis.Redis, s: Settings, group: str) -> int:
    """Entries delivered to ``group`` but not yet acked (a batch between read and ack)."""
    info = group_info(client, s.stream)
    return int(info.get(group, {}).get("pending", 0))


# --- the truth check ----------------------------------------------------------------------


def _keys(table: pa.Table) -> pa.Table:
    return table.select(list(NATURAL_KEY))


def _count_missing(left: pa.Table, right: pa.Table) -> int:
    """Distinct natural keys of ``left`` absent from ``right``."""
    lk = _keys(left).group_by(list(NATURAL_KEY)).aggregate([])
    rk = _keys(right).group_by(list(NATURAL_KEY)).aggregate([])
    return lk.join(rk, keys=list(NATURAL_KEY), join_type="left anti").num_rows


def _duplicates(table: pa.Table) -> int:
    """Rows beyond the first per natural key."""
    return table.num_rows - _keys(table).group_by(list(NATURAL_KEY)).aggregate([]).num_rows


@dataclass
class TruthReport:
    distinct: int
    lost: dict[str, int]
    duplicated: dict[str, int]
    unexpected: dict[str, int]
    values_equal: dict[str, bool]
    hot_equals_cold: bool
    #: distinct ticks of the truth per venue: every scenario runs a two-venue day (KRX + NXT)
    venues: dict[str, int] = field(default_factory=dict)
    #: per store, lost ticks per venue
    lost_by_venue: dict[str, dict[str, int]] = field(default_factory=dict)
    #: `verify` of the day: continuity proven per (venue, symbol) in both stores, hot == cold
    verify_reasons: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (not any(self.lost.values()) and not any(self.duplicated.values()) and not any(self.unexpected.values())
                and all(self.values_equal.values()) and self.hot_equals_cold and not self.verify_reasons)


def truth_check(s: Settings, truth: pa.Table, tmp_path: Path) -> TruthReport:
    """Export both stores, count lost / duplicated / unexpected ticks against the truth (in all
    and per venue), compare hot with cold, and prove each (venue, symbol) continuous with verify."""
    expected = sort_key(truth)
    got = {source: export(s, source, tmp_path / f"truth-{source}.parquet") for source in ("hot", "cold")}
    venues = sorted(set(expected.column("venue").to_pylist()))

    def of(table: pa.Table, venue: str) -> pa.Table:
        return table.filter(pc.equal(table.column("venue"), venue))

    days = sorted({ts.astimezone(KST).date() for ts in pc.unique(expected.column("ts")).to_pylist()})
    reasons = [f"{day}: {reason}" for day in days for reason in _verify_against(s, day, expected)]
    report = TruthReport(
        distinct=expected.num_rows,
        lost={k: _count_missing(expected, t) for k, t in got.items()},
        duplicated={k: _duplicates(t) for k, t in got.items()},
        unexpected={k: _count_missing(t, expected) for k, t in got.items()},
        values_equal={k: t.equals(expected) for k, t in got.items()},
        hot_equals_cold=got["hot"].equals(got["cold"]),
        venues={v: of(expected, v).num_rows for v in venues},
        lost_by_venue={k: {v: _count_missing(of(expected, v), of(t, v)) for v in venues} for k, t in got.items()},
        verify_reasons=reasons,
    )
    return report


def _missing_within(truth: pa.Table) -> dict[str, int]:
    """Per venue, the volume the truth itself lacks between its ticks (a scenario may send only part of a day)."""
    out: dict[str, int] = {}
    ordered = truth.sort_by([("venue", "ascending"), ("symbol", "ascending"), ("cum_volume", "ascending")])
    venue = ordered.column("venue").to_numpy(zero_copy_only=False)
    symbol = ordered.column("symbol").to_numpy(zero_copy_only=False)
    cum, volume = ordered.column("cum_volume").to_numpy(), ordered.column("volume").to_numpy()
    first = np.ones(len(cum), dtype=bool)
    first[1:] = (venue[1:] != venue[:-1]) | (symbol[1:] != symbol[:-1])
    previous = np.where(first, 0, np.concatenate([[0], cum[:-1]]))
    gap = cum - volume - previous
    for v in np.unique(venue):
        out[str(v)] = int(gap[(venue == v) & (gap > 0)].sum())
    return out


def _verify_against(s: Settings, day: date, truth: pa.Table) -> list[str]:
    """`verify` of the day must find exactly the truth's own gaps per venue, no overlap,
    duplicate or hot/cold difference: continuity proven per (venue, symbol) in both stores."""
    start, end = trading_day_bounds(day)
    ts = truth.column("ts")
    day_truth = truth.filter(pc.and_(pc.greater_equal(ts, pa.scalar(start, ts.type)), pc.less(ts, pa.scalar(end, ts.type))))
    expected = _missing_within(day_truth)
    report = verify(s, day)
    reasons = [f"{c.store}: {c.error}" for c in report.stores.values() if c.error]
    reasons += [f"{c.store}: {c.duplicates} duplicate(s)" for c in report.stores.values() if c.duplicates]
    reasons += [f"{c.store}: overlapping ticks" for c in report.stores.values() if any(g.missing_volume < 0 for g in c.gaps)]
    if report.differences:
        reasons.append(f"hot and cold differ in {len(report.differences)} minute(s)")
    for venue, facts in report.venues().items():
        if facts["missing_volume"] != expected.get(venue, 0):
            reasons.append(f"{venue}: verify finds {facts['missing_volume']} volume missing, the truth itself lacks {expected.get(venue, 0)}")
    return reasons


def assert_truth(report: TruthReport) -> None:
    assert set(report.venues) == {"KRX", "NXT"} and all(report.venues.values()), (
        f"the scenario must run a two-venue day (KRX + NXT); its truth holds {report.venues}")
    assert report.clean, (
        f"truth check failed: lost {report.lost} (per venue {report.lost_by_venue}), duplicated {report.duplicated}, "
        f"unexpected {report.unexpected}, values equal {report.values_equal}, hot == cold {report.hot_equals_cold}, "
        f"verify {report.verify_reasons}"
    )


# --- results table ------------------------------------------------------------------------


def record(scenario: str, report: TruthReport, entries: int, faults: int, fault_kind: str, **details: object) -> None:
    """One row of the fault results table (appended to $TICKVAULT_FAULT_REPORT when set)."""
    row = {
        "scenario": scenario,
        "mode": MODE,
        "ticks": report.distinct,
        "entries_sent": entries,
        "faults": faults,
        "fault_kind": fault_kind,
        "lost": sum(report.lost.values()),
        "duplicated": sum(report.duplicated.values()),
        "unexpected": sum(report.unexpected.values()),
        "hot_equals_cold": report.hot_equals_cold,
        "venues": report.venues,
        "verified": not report.verify_reasons,
        **details,
    }
    print("FAULT-RESULT " + json.dumps(row, sort_keys=True))
    path = os.environ.get("TICKVAULT_FAULT_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(row, sort_keys=True) + "\n")


def distinct_count(table: pa.Table) -> int:
    return _keys(table).group_by(list(NATURAL_KEY)).aggregate([]).num_rows


__all__ = [
    "DAY",
    "MODE",
    "SOAK",
    "ArchiverProcess",
    "RetryingPublisher",
    "TruthReport",
    "assert_truth",
    "distinct_count",
    "drain_with_archivers",
    "in_flight",
    "record",
    "scale",
    "truth_check",
    "wait_drained",
]
