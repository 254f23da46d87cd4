"""The cold store: a DuckLake (SQLite catalog + zstd Parquet files) under settings.lake_dir."""

from .connection import LakeLockedError, attach_sql, is_lock_error, open_connection, retry_locked
from .sink import LakeSink
from .store import Lake, LakeStorageError

__all__ = ["Lake", "LakeSink", "LakeLockedError", "LakeStorageError", "attach_sql", "is_lock_error", "open_connection", "retry_locked"]
