SELECT add_retention_policy(%(relation)s::regclass, drop_after => %(drop_after)s::interval, schedule_interval => %(schedule)s::interval)
