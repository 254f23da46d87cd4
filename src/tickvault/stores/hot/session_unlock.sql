SELECT pg_advisory_unlock(hashtext('tickvault.init.' || %(schema)s))
