SELECT add_continuous_aggregate_policy(%(relation)s::regclass,
    start_offset => %(start_offset)s::interval, end_offset => %(end_offset)s::interval,
    schedule_interval => %(schedule)s::interval)
