"""One writer at a time on a lake, across processes.

DuckLake's optimistic concurrency lets two transactions insert into the same table at
once, so two writers (the cold archiver and a reconcile/recovery upsert) could both see a
tick as missing and both insert it. Dedup by anti-join is only exact when writers are
serialised; an advisory file lock next to the catalog does that. Readers never take it.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...core.errors import LakeLocked

LOCK_FILE = "writer.lock"

_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_held = threading.local()  # lock paths this thread holds (re-entry must not self-deadlock)


def _thread_lock(path: Path) -> threading.Lock:
    with _guard:
        return _thread_locks.setdefault(str(path.resolve()), threading.Lock())


@contextmanager
def writer_lock(lake_dir: Path, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold the lake's writer lock (flock works per open file, so also guard threads).

    Re-entrant within one thread: compaction holds it while calling Lake methods.
    """
    path = Path(lake_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    held: set[str] = getattr(_held, "paths", None) or set()
    _held.paths = held
    if key in held:
        yield
        return
    tlock = _thread_lock(path)
    if not tlock.acquire(timeout=timeout_s):
        raise LakeLocked(f"lake writer lock {path} busy for {timeout_s:.0f}s inside this process; retry later")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LakeLocked(
                            f"lake writer lock {path} held by another process for {timeout_s:.0f}s "
                            "(a compaction or upsert?); retry later"
                        ) from None
                    time.sleep(0.01)
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        tlock.release()
