"""The cold store: a DuckLake (SQLite catalog + zstd Parquet files) under settings.lake_dir."""

from .connection import attach_sql, is_lock_error, open_connection, retry_locked
from .store import Lake

__all__ = ["Lake", "attach_sql", "is_lock_error", "open_connection", "retry_locked"]
