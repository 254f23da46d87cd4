"""Merge a day's small Parquet files into few large, sorted ones.

The archiver commits every few seconds, so a trading day collects hundreds of small
files; one-symbol scans over them are ~2.5x slower than over one merged file. DuckLake's
``merge_adjacent_files`` rewrites them (honouring the table's SORTED BY) and keeps every
snapshot readable: time travel to before the merge still works, and the old files stay
until snapshots are expired. It runs under the lake's writer lock, so the archiver simply
waits a moment and continues — compaction is safe while ingesting.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import TYPE_CHECKING

from . import sql
from .writelock import writer_lock

if TYPE_CHECKING:
    from .store import Lake

log = logging.getLogger(__name__)


def compact_day(lake: Lake, day: date) -> dict[str, int | float]:
    """Merge the small files of ``day`` (and of any other day that has several).

    Also prunes old checkpoint rows and deletes orphaned data files (older than an hour).
    Returns files before/after and rows for the day. Raises if the row count changed,
    which would mean a bug in the merge; the merge commits atomically either way.
    """
    lake.init()
    started = time.perf_counter()
    with writer_lock(lake.lake_dir, timeout_s=600):
        files_before = lake.file_count(day)
        rows_before = lake.count_ticks(day)
        if files_before > 1:
            lake._run("merge small files", lambda con: [con.execute(s).fetchall() for s in sql.statements("merge")], write=False)
        lake._run("prune old checkpoint rows", lambda con: con.execute(sql.load("prune_checkpoints")), write=True)
        orphans = lake._run("delete orphaned files", lambda con: len(con.execute(sql.load("delete_orphans")).fetchall()))
        files_after = lake.file_count(day)
        rows_after = lake.count_ticks(day)
    if rows_after != rows_before:
        raise RuntimeError(
            f"compaction of {day} changed its row count {rows_before} -> {rows_after}; "
            f"read the lake as of an earlier snapshot and report this bug"
        )
    seconds = time.perf_counter() - started
    log.info("compacted %s: %d -> %d files, %d rows, %.2fs", day, files_before, files_after, rows_after, seconds)
    return {
        "files_before": files_before,
        "files_after": files_after,
        "rows": rows_after,
        "orphans_deleted": orphans,
        "seconds": round(seconds, 3),
    }
