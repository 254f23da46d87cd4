-- installed: version in this database; available: whether the server could install it.
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed,
       (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS available
