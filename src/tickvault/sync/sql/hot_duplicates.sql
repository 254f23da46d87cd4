-- Natural keys stored more than once (the unique index should make this empty).
SELECT symbol, ts, cum_volume, count(*) AS copies
FROM {ticks}
WHERE ts >= %(start)s AND ts < %(end)s
  AND (cardinality(%(symbols)s::text[]) = 0 OR symbol = ANY(%(symbols)s::text[]))
GROUP BY symbol, ts, cum_volume
HAVING count(*) > 1
ORDER BY symbol, cum_volume, ts
LIMIT 1000
