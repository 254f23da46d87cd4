SELECT count(*) FROM {schema}.ticks WHERE ts >= %(start)s AND ts < %(end)s
