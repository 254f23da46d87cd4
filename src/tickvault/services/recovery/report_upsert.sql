INSERT INTO {table} (day, broker, symbol, status, complete, ticks_before, ticks_after, gaps_found,
                     ticks_recovered, volume_recovered, minutes_disagreeing, detail, ran_at)
VALUES (%(day)s, %(broker)s, %(symbol)s, %(status)s, %(complete)s, %(ticks_before)s, %(ticks_after)s, %(gaps_found)s,
        %(ticks_recovered)s, %(volume_recovered)s, %(minutes_disagreeing)s, %(detail)s::jsonb, %(ran_at)s)
ON CONFLICT (day, broker, symbol) DO UPDATE SET
    status = EXCLUDED.status, complete = EXCLUDED.complete, ticks_before = EXCLUDED.ticks_before,
    ticks_after = EXCLUDED.ticks_after, gaps_found = EXCLUDED.gaps_found, ticks_recovered = EXCLUDED.ticks_recovered,
    volume_recovered = EXCLUDED.volume_recovered, minutes_disagreeing = EXCLUDED.minutes_disagreeing,
    detail = EXCLUDED.detail, ran_at = EXCLUDED.ran_at
