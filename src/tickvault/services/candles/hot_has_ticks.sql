-- Does the hot store hold any tick in [start, end)? One KST date = one partition/chunk, so
-- this touches a single partition and stops at its first row.
SELECT 1 FROM {ticks} WHERE ts >= %(start)s AND ts < %(end)s LIMIT 1
