SELECT DISTINCT symbol FROM {table} WHERE ts >= %(start)s AND ts < %(end)s ORDER BY symbol
