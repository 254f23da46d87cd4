-- DuckDB twin of hot_bounds.sql.
SELECT min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS ticks
FROM lake.ticks
WHERE ts >= $start AND ts < $end
  AND (len($symbols::VARCHAR[]) = 0 OR list_contains($symbols::VARCHAR[], symbol))
