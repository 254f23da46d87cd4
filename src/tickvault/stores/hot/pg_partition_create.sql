-- One KST day of ticks. The advisory lock serialises concurrent archivers creating the same day.
SELECT pg_advisory_xact_lock(hashtext({lock_key}));
CREATE TABLE IF NOT EXISTS {schema}.{partition} PARTITION OF {schema}.ticks FOR VALUES FROM ({lo}) TO ({hi});
