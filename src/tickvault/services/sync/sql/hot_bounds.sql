-- First and last tick time of a range (rebuild copies only where there is data).
SELECT min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS ticks
FROM {ticks}
WHERE ts >= %(start)s AND ts < %(end)s
  AND (cardinality(%(symbols)s::text[]) = 0 OR symbol = ANY(%(symbols)s::text[]))
