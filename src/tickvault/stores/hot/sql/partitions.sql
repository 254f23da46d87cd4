-- PostgreSQL mode: one range partition of ticks per KST day, created ahead or on demand and
-- dropped whole for retention; plain retention deletes for the tables that are not partitioned.

-- name: list_partitions
SELECT c.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(:parent)

-- name: partition_function
-- One trading day of ticks as a partition [lo, hi), created with the owner's rights (SECURITY
-- DEFINER) so the writer role places any tick without DDL rights of its own: the function can
-- only add a partition of this schema's ticks named after its day and spanning about a day.
-- The advisory lock serialises concurrent archivers creating the same day (and retention drops).
CREATE OR REPLACE FUNCTION {schema}.tickvault_create_partition(day date, lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF NOT (lo < hi AND hi - lo <= interval '26 hours' AND abs(extract(epoch FROM lo - day::timestamp AT TIME ZONE 'UTC')) <= 86400) THEN
        RAISE EXCEPTION 'tickvault_create_partition: [%, %) is not the day %', lo, hi, day;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext({lock_key}));
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.ticks FOR VALUES FROM (%L) TO (%L)',
                   {schema_name}, 'ticks_p' || to_char(day, 'YYYYMMDD'), {schema_name}, lo, hi);
END
$fn$;
REVOKE ALL ON FUNCTION {schema}.tickvault_create_partition(date, timestamptz, timestamptz) FROM PUBLIC

-- name: create_partition
SELECT {schema}.tickvault_create_partition(:day, :lo, :hi)

-- name: drop_partition
SELECT pg_advisory_xact_lock(hashtext({lock_key}));
DROP TABLE IF EXISTS {schema}.{partition}

-- name: delete_before
-- Retention for the tables that are not partitioned (candles, metrics in PostgreSQL mode).
DELETE FROM {schema}.{table} WHERE {column} < :cutoff
