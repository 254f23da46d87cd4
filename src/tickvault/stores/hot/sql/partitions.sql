-- PostgreSQL mode: one range partition of ticks per KST day, created ahead or on demand and
-- dropped whole for retention; plain retention deletes for the tables that are not partitioned.

-- name: list_partitions
SELECT c.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(:parent)

-- name: partition_function
-- One KST day of ticks as a partition, created with the owner's rights (SECURITY DEFINER) so
-- the writer role places any tick without DDL rights of its own: the function can only add a
-- whole-day partition of this schema's ticks. The advisory lock serialises concurrent archivers
-- creating the same day (and a retention drop). KST is UTC+9 without DST since 1988.
CREATE OR REPLACE FUNCTION {schema}.tickvault_create_partition(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext({lock_key}));
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.ticks FOR VALUES FROM (%L) TO (%L)',
                   {schema_name}, 'ticks_p' || to_char(day, 'YYYYMMDD'), {schema_name},
                   (day::timestamp - interval '9 hours') AT TIME ZONE 'UTC',
                   (day::timestamp + interval '15 hours') AT TIME ZONE 'UTC');
END
$fn$;
REVOKE ALL ON FUNCTION {schema}.tickvault_create_partition(date) FROM PUBLIC

-- name: create_partition
SELECT {schema}.tickvault_create_partition(:day)

-- name: drop_partition
SELECT pg_advisory_xact_lock(hashtext({lock_key}));
DROP TABLE IF EXISTS {schema}.{partition}

-- name: delete_before
-- Retention for the tables that are not partitioned (candles, metrics in PostgreSQL mode).
DELETE FROM {schema}.{table} WHERE {column} < :cutoff
