SELECT value FROM {schema}.hot_meta WHERE key = %(key)s
