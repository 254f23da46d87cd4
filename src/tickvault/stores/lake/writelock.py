"""One writer at a time on a lake, across processes.

DuckLake's optimistic concurrency lets two transactions insert into the same table at
once, so two writers (the cold archiver and a reconcile/recovery upsert) could both see a
tick as missing and both insert it. Dedup by anti-join is only exact when writers are
serialised; an advisory file lock next to the catalog does that. Readers never take it.
With the catalog on PostgreSQL (writers on several hosts) a PostgreSQL advisory lock of the
catalog's schema does the same job; it is released when its session ends, a SIGKILLed
writer included.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from ...core.errors import LakeLocked, StoreUnavailable
from ..sqlfiles import load
from .location import LakeLocation

LOCK_FILE = "writer.lock"

_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_held = threading.local()  # lock paths this thread holds (re-entry must not self-deadlock)


def _thread_lock(path: Path) -> threading.Lock:
    with _guard:
        return _thread_locks.setdefault(str(path.resolve()), threading.Lock())


@contextmanager
def writer_lock(where: Path | LakeLocation, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold the lake's writer lock: a file lock, or an advisory lock on the PostgreSQL catalog.

    Re-entrant within one thread: compaction holds it while calling Lake methods.
    """
    if isinstance(where, LakeLocation) and where.catalog_url is not None:
        with _postgres_lock(where.catalog_url, where.catalog_schema, timeout_s):
            yield
        return
    lake_dir = where.lake_dir if isinstance(where, LakeLocation) else where
    with _file_lock(Path(lake_dir), timeout_s):
        yield


def lock_key(catalog_schema: str) -> int:
    """The advisory lock id of a catalog schema (a signed 64-bit int, the same on every host)."""
    digest = hashlib.blake2b(f"tickvault lake writer {catalog_schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _postgres_lock(url: str, catalog_schema: str, timeout_s: float) -> Iterator[None]:
    """pg_advisory_lock on its own session (closing it releases the lock whatever happened)."""
    key = f"pg:{catalog_schema}"
    held: set[str] = getattr(_held, "paths", None) or set()
    _held.paths = held
    if key in held:
        yield
        return
    tlock = _thread_lock(Path(key))
    if not tlock.acquire(timeout=timeout_s):
        raise LakeLocked(f"lake writer lock of catalog {catalog_schema} busy for {timeout_s:.0f}s inside this process; retry later")
    try:
        statements = load(__package__, "catalog.sql")
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"the lake catalog's PostgreSQL is unreachable ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}); "
                "check TICKVAULT_LAKE_CATALOG and that the server is up"
            ) from None
        try:
            conn.execute(statements["lock_timeout"].postgres(), {"timeout": f"{int(timeout_s * 1000)}ms"})
            try:
                conn.execute(statements["writer_lock"].postgres(), {"key": lock_key(catalog_schema)})
            except psycopg.errors.LockNotAvailable:
                raise LakeLocked(
                    f"lake writer lock of catalog {catalog_schema} held by another writer for {timeout_s:.0f}s "
                    "(a compaction or upsert on another host?); retry later"
                ) from None
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)
        finally:
            conn.close()  # ends the session: the advisory lock goes with it
    finally:
        tlock.release()


@contextmanager
def _file_lock(lake_dir: Path, timeout_s: float) -> Iterator[None]:
    """flock works per open file, so threads are guarded too."""
    path = lake_dir / LOCK_FILE
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
