SELECT compression_enabled FROM timescaledb_information.hypertables
WHERE hypertable_schema = %(schema)s AND hypertable_name = 'ticks'
