-- DuckDB twin of hot_minutes.sql (same columns, same checksum); see that file for the why.
-- The lake has no primary key, so natural keys are deduplicated first and the extra copies
-- counted as duplicates.
WITH keyed AS (
    SELECT symbol, cum_volume, max(volume) AS volume, count(*) AS copies, epoch_us(ts) AS ts_us
    FROM lake.ticks
    WHERE ts >= $start AND ts < $end
      AND trade_date BETWEEN CAST(timezone('Asia/Seoul', $start) AS DATE) AND CAST(timezone('Asia/Seoul', $end) AS DATE)
      AND (len($symbols::VARCHAR[]) = 0 OR list_contains($symbols::VARCHAR[], symbol))
    GROUP BY symbol, ts, cum_volume
), ordered AS (
    SELECT symbol, cum_volume, volume, copies, ts_us,
           ((cum_volume % 2147483647) * 48271 + ts_us % 2147483629) % 2147483647 + 1 AS x,
           cum_volume - coalesce(lag(cum_volume) OVER w, 0) - volume AS missing
    FROM keyed
    WINDOW w AS (PARTITION BY symbol ORDER BY cum_volume, ts_us)
)
SELECT symbol,
       ts_us // 60000000 AS minute,
       count(*) AS ticks,
       sum(volume)::BIGINT AS volume,
       max(cum_volume) AS max_cum_volume,
       sum((x * x) % 2305843009213693951) AS checksum,
       sum(copies - 1)::BIGINT AS duplicates,
       count(*) FILTER (WHERE missing <> 0) AS breaks,
       coalesce(sum(missing) FILTER (WHERE missing > 0), 0)::BIGINT AS missing_volume
FROM ordered
GROUP BY symbol, minute
ORDER BY symbol, minute
