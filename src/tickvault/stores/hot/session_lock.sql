SELECT pg_advisory_lock(hashtext('tickvault.init.' || %(schema)s))
