"""The lake's disk fills up under the cold archiver: a clear error, nothing acked, and it
resumes on its own when space returns. The hot side is not held back.

Two ways to run out of space, both real write failures of the archiver process:
- ``tmpfs``: the lake lives on a small tmpfs mount filled to the last byte with a filler
  file (ENOSPC, "No space left on device"); needs root or CAP_SYS_ADMIN to mount, and is
  skipped with that reason elsewhere;
- ``rlimit``: RLIMIT_FSIZE of the running archiver is lowered to 0 with prlimit(2), so
  every write that would extend a file fails (EFBIG, "File too large"; Python ignores
  SIGXFSZ). It runs everywhere; space "returns" when the limit is raised again, without
  restarting the process.
"""

from __future__ import annotations

import errno
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from faultkit import ArchiverProcess, RetryingPublisher, assert_truth, record, scale, truth_check, wait_drained

from factories import DAY
from tickvault.core.config import Settings
from tickvault.core.stream import group_info
from tickvault.dev.simulate import generate_day
from tickvault.stores.lake import Lake


@contextmanager
def small_tmpfs(where: Path, size_mb: int) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(where)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'mount failed'}); the rlimit variant covers disk full")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem refuses (ENOSPC)."""
    filler = directory / "filler.bin"
    block = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc  # noqa: PT017 - filling the disk until it refuses is the point
        try:  # the last partial megabyte
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    assert shutil.disk_usage(directory).free < (1 << 16)
    return filler


def lake_count_read_only(s: Settings) -> int | None:
    """Ticks in the lake seen by a read-only reader, or None when it cannot attach."""
    import duckdb

    try:
        con = Lake(s).connect(read_only=True)
    except duckdb.Error:
        return None
    try:
        return int(con.execute("SELECT count(*) FROM lake.ticks").fetchone()[0])
    finally:
        con.close()


def cold_backlog(client: redis.Redis, s: Settings) -> int:
    info = group_info(client, s.stream).get("cold", {})
    return int(info.get("lag", 0)) + int(info.get("pending", 0))


def wait_for_log(archiver: ArchiverProcess, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = archiver.log.read_text(errors="replace") if archiver.log.exists() else ""
        if needle in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not logged in {timeout}s:\n{archiver.log.read_text(errors='replace')[-3000:]}")


@pytest.mark.parametrize("mechanism", ["tmpfs", "rlimit"])
def test_lake_disk_full_is_retried_and_resumes(mechanism: str, settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    ticks = scale(40_000, 400_000)
    with (small_tmpfs(tmp_path / "lakefs", 64) if mechanism == "tmpfs" else _nothing(tmp_path / "lakefs")) as fs:
        s = settings.model_copy(update={"lake_dir": fs / "lake", "retry_max_s": 1.0})
        day = generate_day(DAY, symbols=10, ticks=ticks, seed=51)
        first, second = day.slice(0, ticks // 2), day.slice(ticks // 2)
        hot, cold = ArchiverProcess(s, "hot", tmp_path / "hot.log"), ArchiverProcess(s, "cold", tmp_path / "cold.log")
        publisher = RetryingPublisher(s.redis_dsn, s.stream)
        hot.start(), cold.start()
        try:
            cold.wait_started()
            publisher.publish_day(first, seed=51)
            wait_drained(rclient, s, ("hot", "cold"))
            lake = Lake(s)
            before = lake.count_ticks(DAY)
            lake.close()
            assert before == first.num_rows
            # --- the disk is full
            if mechanism == "tmpfs":
                filler = fill(fs)
                error_text = "No space left on device (errno 28)"
            else:
                soft, hard = resource.prlimit(cold.proc.pid, resource.RLIMIT_FSIZE)
                resource.prlimit(cold.proc.pid, resource.RLIMIT_FSIZE, (0, hard))
                error_text = "File too large (errno 27)"
            publisher.publish_day(second, seed=52)
            wait_drained(rclient, s, ("hot",))  # the hot side is not held back
            text = wait_for_log(cold, error_text)
            assert "StorageFull: cannot write to the lake at" in text and "nothing is acked until it succeeds" in text
            failures_before = text.count(error_text)
            time.sleep(3.0)  # several retries while full
            assert cold_backlog(rclient, s) > 0, "the cold group acked entries it could not write"
            during = lake_count_read_only(s)
            if during is not None:  # a reader may not even attach while the disk is full (SQLite WAL files)
                assert during == before, "ticks became visible although their commit failed"
            retries = cold.log.read_text(errors="replace").count(error_text)
            assert retries > failures_before, "the archiver stopped retrying while the disk was full"
            # --- space returns: the same process resumes
            if mechanism == "tmpfs":
                filler.unlink()
            else:
                resource.prlimit(cold.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
            wait_drained(rclient, s, ("hot", "cold"))
            assert cold.proc.poll() is None, "the archiver died instead of waiting for space"
        finally:
            codes = {"hot": hot.stop(), "cold": cold.stop()}
        assert codes == {"hot": 0, "cold": 0}, codes
        report = truth_check(s, day, tmp_path)
    record(f"lake disk full ({mechanism})", report, publisher.stats.entries, 1, f"disk full via {mechanism}",
           failed_commit_attempts=retries, reader_could_attach_while_full=during is not None)
    assert_truth(report)


@contextmanager
def _nothing(where: Path) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    yield where
