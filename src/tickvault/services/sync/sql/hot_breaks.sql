-- Every continuity break of the range (and each symbol's last tick, needed to intersect the
-- two stores' gaps): the tick before the break, the tick after it, and the missing volume.
WITH ordered AS (
    SELECT symbol, ts, cum_volume, volume,
           lag(ts) OVER w AS prev_ts,
           coalesce(lag(cum_volume) OVER w, 0) AS prev_cum_volume,
           lead(cum_volume) OVER w IS NULL AS is_last
    FROM {ticks}
    WHERE ts >= %(start)s AND ts < %(end)s
      AND (cardinality(%(symbols)s::text[]) = 0 OR symbol = ANY(%(symbols)s::text[]))
    WINDOW w AS (PARTITION BY symbol ORDER BY cum_volume, ts)
)
SELECT symbol, prev_ts, prev_cum_volume, ts, cum_volume, volume,
       cum_volume - prev_cum_volume - volume AS missing, is_last
FROM ordered
WHERE cum_volume - prev_cum_volume - volume <> 0 OR is_last
ORDER BY symbol, cum_volume, ts
