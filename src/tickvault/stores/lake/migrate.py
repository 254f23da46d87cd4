"""`tickvault lake migrate --to s3://bucket/prefix`: move a lake's files from local disk to S3.

Under the writer lock (archivers wait; stop them for a long copy): every file under the data
directory is copied byte for byte (the snapshots' files too, so time travel survives), the copy is
proved equal — same file names and sizes, and every table read through the catalog from the copy
gives the same rows as from the original — and only then does the catalog record the new data
path. A failed proof changes nothing. The local files stay until the operator removes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import duckdb

from ...core.config import Settings
from ...core.errors import ConfigError, StoreError, StoreNotInitialized
from ..sqlfiles import load
from .connection import lake_exists, open_connection
from .location import LakeLocation
from .writelock import writer_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    target: str
    files: int
    bytes: int
    tables: dict[str, int]  # rows per table, equal before and after


def fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """(rows, row hash) of every table of the attached lake."""
    statements = load(__package__, "maintenance.sql")
    names = [row[0] for row in con.execute(load(__package__, "schema.sql")["lake_tables"].duckdb()).fetchall()]
    out = {}
    for name in sorted(names):
        row = con.execute(statements["table_fingerprint"].duckdb(table=name)).fetchone()
        assert row is not None  # an aggregate always returns one row
        out[name] = (int(row[0]), int(row[1]))
    return out


def _local_files(location: LakeLocation) -> dict[str, int]:
    from pyarrow import fs

    root = location.local_data_dir
    assert root is not None
    infos = fs.LocalFileSystem().get_file_info(fs.FileSelector(str(root.resolve()), recursive=True))
    base = str(root.resolve()).rstrip("/") + "/"
    return {i.path.removeprefix(base): int(i.size or 0) for i in infos if i.type == fs.FileType.File}


def _s3_files(location: LakeLocation, s3: Any) -> dict[str, int]:
    from pyarrow import fs

    base = location.data_path.removeprefix("s3://")
    infos = s3.get_file_info(fs.FileSelector(base.rstrip("/"), recursive=True, allow_not_found=True))
    return {i.path.removeprefix(base): int(i.size or 0) for i in infos if i.type == fs.FileType.File}


def migrate_to_s3(settings: Settings, target: str) -> Migration:
    """Copy the lake's files to ``target``, prove the copy equal, then switch the catalog to it."""
    from pyarrow import fs

    source = LakeLocation.of(settings)
    if source.on_s3:
        raise ConfigError(f"the lake's data is already on S3 ({source.data_path}); migrate moves a local lake to S3")
    if not target.startswith("s3://") or len(target.removeprefix("s3://").strip("/")) == 0:
        raise ConfigError(f"--to must be s3://bucket/prefix, got {target!r}")
    if not lake_exists(source):
        raise StoreNotInitialized(f"no lake at {source.describe()}: check TICKVAULT_LAKE_DIR / TICKVAULT_LAKE_CATALOG")
    dest = LakeLocation.of(settings, data=target.rstrip("/"))
    s3 = dest.s3_filesystem()
    with writer_lock(source, timeout_s=600):
        con = open_connection(source, read_only=True)
        try:
            before = fingerprints(con)
        finally:
            con.close()
        originals = _local_files(source)
        if _s3_files(dest, s3):
            raise ConfigError(f"{dest.data_path} already holds files; migrate into an empty prefix")
        log.info("lake migrate: copying %d files (%d bytes) to %s", len(originals), sum(originals.values()), dest.data_path)
        try:
            fs.copy_files(str(source.local_data_dir.resolve()), dest.data_path.removeprefix("s3://").rstrip("/"),  # type: ignore[union-attr]
                          source_filesystem=fs.LocalFileSystem(), destination_filesystem=s3)
        except OSError as exc:
            raise StoreError(f"copying the lake's files to {dest.data_path} failed ({exc}); the lake still uses {source.data_path}") from exc
        copies = _s3_files(dest, s3)
        if copies != originals:
            missing = sorted(set(originals) - set(copies))[:3]
            raise StoreError(f"the copy at {dest.data_path} differs from the lake's files (e.g. {missing or 'sizes'}); "
                             f"the lake still uses {source.data_path}")
        con = open_connection(dest, read_only=True, override_data_path=True)
        try:
            after = fingerprints(con)
        finally:
            con.close()
        if after != before:
            changed = sorted(name for name in before if before[name] != after.get(name))
            raise StoreError(f"the lake read from {dest.data_path} differs in {changed}; the lake still uses {source.data_path}")
        con = open_connection(source)
        try:
            switch = load(__package__, "maintenance.sql")["switch_data_path"]
            con.execute(switch.duckdb(metadata=source.metadata_relation), {"data_path": dest.data_path})
        finally:
            con.close()
    log.info("lake migrate: the catalog now points to %s", dest.data_path)
    return Migration(dest.data_path, len(originals), sum(originals.values()), {name: rows for name, (rows, _) in before.items()})
