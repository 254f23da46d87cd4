SELECT add_compression_policy(%(relation)s::regclass, compress_after => %(compress_after)s::interval, schedule_interval => %(schedule)s::interval)
