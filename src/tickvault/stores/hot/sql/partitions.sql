-- PostgreSQL mode: one range partition of ticks per KST day, created ahead or on demand and
-- dropped whole for retention; plain retention deletes for the tables that are not partitioned.

-- name: list_partitions
SELECT c.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(:parent)

-- name: create_partition
-- One KST day of ticks. The advisory lock serialises concurrent archivers creating the same day.
SELECT pg_advisory_xact_lock(hashtext({lock_key}));
CREATE TABLE IF NOT EXISTS {schema}.{partition} PARTITION OF {schema}.ticks FOR VALUES FROM ({lo}) TO ({hi})

-- name: drop_partition
SELECT pg_advisory_xact_lock(hashtext({lock_key}));
DROP TABLE IF EXISTS {schema}.{partition}

-- name: delete_before
-- Retention for the tables that are not partitioned (candles, metrics in PostgreSQL mode).
DELETE FROM {schema}.{table} WHERE {column} < :cutoff
