SELECT last_id FROM {schema}.ingest_checkpoint WHERE stream = %(stream)s AND grp = %(grp)s
