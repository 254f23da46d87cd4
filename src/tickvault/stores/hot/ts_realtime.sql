ALTER MATERIALIZED VIEW {schema}.{view} SET (timescaledb.materialized_only = false)
