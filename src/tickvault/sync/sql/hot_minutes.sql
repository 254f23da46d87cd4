-- Fingerprint of one time range of the hot store, per (symbol, minute), plus continuity
-- breaks, in one pass. The checksum is the sum of the first 60 bits of
-- md5('<cum_volume>:<ts in epoch microseconds>') over the distinct natural keys; lake_minutes.sql
-- computes exactly the same number in DuckDB (tests/test_reconcile.py checks that).
-- missing = cum_volume - previous cum_volume - volume: 0 for a continuous tick, > 0 after a gap,
-- < 0 for conflicting ticks (same cumulative volume twice).
WITH keyed AS (
    SELECT symbol, ts, cum_volume, max(volume) AS volume, count(*) AS copies
    FROM {ticks}
    WHERE ts >= %(start)s AND ts < %(end)s
      AND (cardinality(%(symbols)s::text[]) = 0 OR symbol = ANY(%(symbols)s::text[]))
    GROUP BY symbol, ts, cum_volume
), ordered AS (
    SELECT symbol, cum_volume, volume, copies,
           (extract(epoch FROM ts) * 1000000)::bigint AS ts_us,
           cum_volume - coalesce(lag(cum_volume) OVER w, 0) - volume AS missing
    FROM keyed
    WINDOW w AS (PARTITION BY symbol ORDER BY cum_volume, ts)
)
SELECT symbol,
       ts_us / 60000000 AS minute,
       count(*) AS ticks,
       sum(volume)::bigint AS volume,
       max(cum_volume) AS max_cum_volume,
       sum(('x' || substr(md5(cum_volume::text || ':' || ts_us::text), 1, 15))::bit(60)::bigint) AS checksum,
       sum(copies - 1)::bigint AS duplicates,
       count(*) FILTER (WHERE missing <> 0) AS breaks,
       coalesce(sum(missing) FILTER (WHERE missing > 0), 0)::bigint AS missing_volume
FROM ordered
GROUP BY symbol, minute
ORDER BY symbol, minute
