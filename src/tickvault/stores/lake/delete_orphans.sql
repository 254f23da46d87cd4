-- Parquet files no snapshot refers to: left by transactions that failed or were killed
-- after writing data and before their catalog commit. Only files older than an hour, and
-- only under the writer lock, so no tickvault transaction still in flight is touched.
CALL ducklake_delete_orphaned_files('lake', older_than => now() - INTERVAL 1 HOUR)
