-- The PostgreSQL catalog (TICKVAULT_LAKE_CATALOG), asked through psycopg: the writers' lock and
-- whether the catalog exists. DuckLake's own ducklake_* tables are only touched by DuckDB.

-- name: writer_lock
-- Every lake write transaction on any host runs inside this lock: DuckLake's commit retry
-- re-applies an append without re-running the anti-join, so unserialised writers with
-- overlapping keys would store duplicates. Waits at most lock_timeout (set by the caller).
SELECT pg_advisory_lock(:key)

-- name: writer_unlock
SELECT pg_advisory_unlock(:key)

-- name: lock_timeout
SELECT set_config('lock_timeout', :timeout, false)

-- name: catalog_exists
SELECT to_regclass(:table) IS NOT NULL
