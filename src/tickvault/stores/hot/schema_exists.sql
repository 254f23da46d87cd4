SELECT to_regclass(%(meta)s) IS NOT NULL
