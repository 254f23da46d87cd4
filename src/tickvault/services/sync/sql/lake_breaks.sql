-- DuckDB twin of hot_breaks.sql.
WITH keyed AS (
    SELECT symbol, ts, cum_volume, max(volume) AS volume
    FROM lake.ticks
    WHERE ts >= $start AND ts < $end
      AND trade_date BETWEEN CAST(timezone('Asia/Seoul', $start) AS DATE) AND CAST(timezone('Asia/Seoul', $end) AS DATE)
      AND (len($symbols::VARCHAR[]) = 0 OR list_contains($symbols::VARCHAR[], symbol))
    GROUP BY symbol, ts, cum_volume
), ordered AS (
    SELECT symbol, ts, cum_volume, volume,
           lag(ts) OVER w AS prev_ts,
           coalesce(lag(cum_volume) OVER w, 0) AS prev_cum_volume,
           lead(cum_volume) OVER w IS NULL AS is_last
    FROM keyed
    WINDOW w AS (PARTITION BY symbol ORDER BY cum_volume, ts)
)
SELECT symbol, prev_ts, prev_cum_volume, ts, cum_volume, volume,
       cum_volume - prev_cum_volume - volume AS missing, is_last
FROM ordered
WHERE cum_volume - prev_cum_volume - volume <> 0 OR is_last
ORDER BY symbol, cum_volume, ts
