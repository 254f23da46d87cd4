-- Retention for the tables that are not partitioned (candles, metrics in PostgreSQL mode).
DELETE FROM {schema}.{table} WHERE {column} < %(cutoff)s
