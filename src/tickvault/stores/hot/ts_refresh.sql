CALL refresh_continuous_aggregate(%(relation)s::regclass, %(start)s::timestamptz, %(end)s::timestamptz)
