-- Natural keys stored more than once in the lake (it has no primary key; upserts anti-join).
SELECT symbol, ts, cum_volume, count(*) AS copies
FROM lake.ticks
WHERE ts >= $start AND ts < $end
  AND trade_date BETWEEN CAST(timezone('Asia/Seoul', $start) AS DATE) AND CAST(timezone('Asia/Seoul', $end) AS DATE)
  AND (len($symbols::VARCHAR[]) = 0 OR list_contains($symbols::VARCHAR[], symbol))
GROUP BY symbol, ts, cum_volume
HAVING count(*) > 1
ORDER BY symbol, cum_volume, ts
LIMIT 1000
