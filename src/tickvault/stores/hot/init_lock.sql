-- Serialise concurrent `init`s of the same schema (two archivers starting at once).
SELECT pg_advisory_xact_lock(hashtext('tickvault.init.' || %(schema)s))
