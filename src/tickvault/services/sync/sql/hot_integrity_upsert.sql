INSERT INTO {table} (day, symbol, ticks, volume, gaps, missing_volume, duplicates,
                     repaired_hot, repaired_cold, status, checked_at)
VALUES (%(day)s, %(symbol)s, %(ticks)s, %(volume)s, %(gaps)s, %(missing_volume)s, %(duplicates)s,
        %(repaired_hot)s, %(repaired_cold)s, %(status)s, %(checked_at)s)
ON CONFLICT (day, symbol) DO UPDATE SET
    ticks = excluded.ticks,
    volume = excluded.volume,
    gaps = excluded.gaps,
    missing_volume = excluded.missing_volume,
    duplicates = excluded.duplicates,
    -- repairs accumulate over the day's runs; the rest is the latest state
    repaired_hot = {table}.repaired_hot + excluded.repaired_hot,
    repaired_cold = {table}.repaired_cold + excluded.repaired_cold,
    -- a day repaired earlier stays "repaired" while it is otherwise ok
    status = CASE WHEN excluded.status = 'ok'
                       AND {table}.repaired_hot + {table}.repaired_cold > 0 THEN 'repaired'
                  ELSE excluded.status END,
    checked_at = excluded.checked_at
