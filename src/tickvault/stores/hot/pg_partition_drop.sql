SELECT pg_advisory_xact_lock(hashtext({lock_key}));
DROP TABLE IF EXISTS {schema}.{partition};
