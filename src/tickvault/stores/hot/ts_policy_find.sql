SELECT job_id,
       schedule_interval,
       (config ->> 'start_offset')::interval,
       (config ->> 'end_offset')::interval,
       (config ->> 'drop_after')::interval,
       (config ->> 'compress_after')::interval
FROM timescaledb_information.jobs
WHERE hypertable_schema = %(schema)s AND hypertable_name = %(relation)s AND proc_name = %(proc)s
ORDER BY job_id
