-- Maintenance: compaction and cleanup, run under the writer lock (compact.py).

-- name: flush_inlined
-- Inlined tick rows (small commits) into Parquet before the merge, so the day ends in files.
CALL ducklake_flush_inlined_data('lake', table_name => 'ticks');

-- name: merge_files
-- Merge adjacent small files of the tick table, partition by partition.
CALL ducklake_merge_adjacent_files('lake', 'ticks');

-- name: prune_checkpoints
-- Keep only the highest-id checkpoint row of each (stream, group).
DELETE FROM lake.ingest_checkpoint AS c
WHERE EXISTS (
    SELECT 1 FROM lake.ingest_checkpoint AS n
    WHERE n.stream = c.stream AND n.consumer_group = c.consumer_group
      AND (CAST(split_part(n.last_id, '-', 1) AS HUGEINT), CAST(split_part(n.last_id, '-', 2) AS HUGEINT))
        > (CAST(split_part(c.last_id, '-', 1) AS HUGEINT), CAST(split_part(c.last_id, '-', 2) AS HUGEINT))
)

-- name: delete_orphans
-- Parquet files no snapshot refers to: left by transactions that failed or were killed
-- after writing data and before their catalog commit. Only files older than an hour, and
-- only under the writer lock, so no tickvault transaction still in flight is touched.
CALL ducklake_delete_orphaned_files('lake', older_than => now() - INTERVAL 1 HOUR)

-- name: expire_snapshots
-- Forget snapshots older than :older_than (time travel before it ends; the newest always stays).
CALL ducklake_expire_snapshots('lake', older_than => :older_than)

-- name: cleanup_old_files
-- Delete the files no remaining snapshot refers to (those expiry just released).
CALL ducklake_cleanup_old_files('lake', cleanup_all => true)

-- name: table_fingerprint
-- Rows and an order-independent hash of every row of one lake table: what a migration compares
-- between the lake's files before and after the copy.
SELECT count(*) AS row_count, coalesce(sum(hash(t)), 0) AS row_hash FROM lake.{table} AS t

-- name: switch_data_path
-- After a migration proved its copy equal: the catalog records the new place of the files
-- (relative file paths stay valid; DuckLake refuses an ATTACH whose DATA_PATH differs from it).
UPDATE {metadata}.ducklake_metadata SET value = :data_path WHERE key = 'data_path'
