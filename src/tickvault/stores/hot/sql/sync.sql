-- The questions sync and recovery ask the hot store, and the reports they keep in it.
-- lake/sql/sync.sql answers the same questions with the same columns (the checksum included).

-- name: minute_fingerprints
-- Fingerprint of one time range of the hot store, per (venue, symbol, minute), plus continuity
-- breaks, in one pass. The lake's minute_fingerprints computes exactly the same numbers in DuckDB
-- (tests/test_verify.py checks that).
--
-- checksum: order-independent sum over the ticks of h = x*x mod (2^61 - 1) with
--   k = ((cum_volume mod (2^31 - 1)) * 48271 + ts_us mod 2147483629) mod (2^31 - 1)   (the key)
--   x = (k * 16807 + (price_e4 mod 2147483629) * 31 + (volume mod 2147483629) * 7 + side_code) mod (2^31 - 1) + 1
-- (price_e4 = price x 10^4, side_code B = 1, S = 2, null = 0): every stored trade column
-- (core.wire.TRADE_COLUMNS), so two stores holding one key with different prices, volumes or
-- sides differ here. Plain bigint arithmetic (no overflow: x*x < 2^62) that both engines evaluate identically and
-- ~15x faster than md5 in DuckDB. Not cryptographic: it sits next to count, sum(volume) and
-- max(cum_volume), and only has to make an accidental match of two different sets unlikely.
-- missing = cum_volume - previous cum_volume - volume: 0 for a continuous tick, > 0 after a gap,
-- < 0 for conflicting ticks (same cumulative volume twice).

-- Continuity runs per (venue, symbol): each venue keeps its own cumulative day volume.
-- The hot table's UNIQUE (venue, symbol, ts, cum_volume) rules out duplicates: no dedup step here.
WITH base AS (
    SELECT venue, symbol, cum_volume, volume, (extract(epoch FROM ts) * 1000000)::bigint AS ts_us,
           (price * 10000)::bigint AS price_e4, CASE side WHEN 'B' THEN 1 WHEN 'S' THEN 2 ELSE 0 END AS side_code
    FROM {schema}.ticks
    WHERE ts >= :start AND ts < :end
      AND (cardinality(:symbols::text[]) = 0 OR symbol = ANY(:symbols::text[]))
), ordered AS (
    SELECT venue, symbol, cum_volume, volume, ts_us,
           (((cum_volume % 2147483647) * 48271 + ts_us % 2147483629) % 2147483647 * 16807
            + (price_e4 % 2147483629) * 31 + (volume % 2147483629) * 7 + side_code) % 2147483647 + 1 AS x,
           cum_volume - coalesce(lag(cum_volume) OVER w, 0) - volume AS missing
    FROM base
    WINDOW w AS (PARTITION BY venue, symbol ORDER BY cum_volume, ts_us)
)
SELECT venue,
       symbol,
       ts_us / 60000000 AS minute,
       count(*) AS ticks,
       sum(volume)::bigint AS volume,
       max(cum_volume) AS max_cum_volume,
       sum((x * x) % 2305843009213693951) AS checksum,
       0::bigint AS duplicates,
       count(*) FILTER (WHERE missing <> 0) AS breaks,
       coalesce(sum(missing) FILTER (WHERE missing > 0), 0)::bigint AS missing_volume
FROM ordered
GROUP BY venue, symbol, minute
ORDER BY venue, symbol, minute

-- name: breaks
-- Every continuity break of the range per (venue, symbol) (and each one's last tick, needed to
-- intersect the two stores' gaps): the tick before the break, the tick after it, the missing volume.
WITH ordered AS (
    SELECT venue, symbol, ts, cum_volume, volume,
           lag(ts) OVER w AS prev_ts,
           coalesce(lag(cum_volume) OVER w, 0) AS prev_cum_volume,
           lead(cum_volume) OVER w IS NULL AS is_last
    FROM {schema}.ticks
    WHERE ts >= :start AND ts < :end
      AND (cardinality(:symbols::text[]) = 0 OR symbol = ANY(:symbols::text[]))
    WINDOW w AS (PARTITION BY venue, symbol ORDER BY cum_volume, ts)
)
SELECT venue, symbol, prev_ts, prev_cum_volume, ts, cum_volume, volume,
       cum_volume - prev_cum_volume - volume AS missing, is_last
FROM ordered
WHERE cum_volume - prev_cum_volume - volume <> 0 OR is_last
ORDER BY venue, symbol, cum_volume, ts

-- name: bounds
-- First and last tick time of a range (rebuild copies only where there is data).
SELECT min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS ticks
FROM {schema}.ticks
WHERE ts >= :start AND ts < :end
  AND (cardinality(:symbols::text[]) = 0 OR symbol = ANY(:symbols::text[]))

-- name: upsert_integrity
INSERT INTO {schema}.integrity_report (day, venue, symbol, ticks, volume, gaps, missing_volume, duplicates,
                     repaired_hot, repaired_cold, status, checked_at)
VALUES (:day, :venue, :symbol, :ticks, :volume, :gaps, :missing_volume, :duplicates,
        :repaired_hot, :repaired_cold, :status, :checked_at)
ON CONFLICT (day, venue, symbol) DO UPDATE SET
    ticks = excluded.ticks,
    volume = excluded.volume,
    gaps = excluded.gaps,
    missing_volume = excluded.missing_volume,
    duplicates = excluded.duplicates,
    -- repairs accumulate over the day's runs; the rest is the latest state
    repaired_hot = {schema}.integrity_report.repaired_hot + excluded.repaired_hot,
    repaired_cold = {schema}.integrity_report.repaired_cold + excluded.repaired_cold,
    -- a day repaired earlier stays "repaired" while it is otherwise ok
    status = CASE WHEN excluded.status = 'ok'
                       AND {schema}.integrity_report.repaired_hot + {schema}.integrity_report.repaired_cold > 0 THEN 'repaired'
                  ELSE excluded.status END,
    checked_at = excluded.checked_at

-- name: read_integrity
SELECT * FROM {schema}.integrity_report WHERE day = :day ORDER BY symbol, venue

-- name: upsert_recovery_report
INSERT INTO {schema}.recovery_report (day, broker, venue, symbol, status, complete, ticks_before, ticks_after, gaps_found,
                     ticks_recovered, volume_recovered, minutes_disagreeing, detail, ran_at)
VALUES (:day, :broker, :venue, :symbol, :status, :complete, :ticks_before, :ticks_after, :gaps_found,
        :ticks_recovered, :volume_recovered, :minutes_disagreeing, :detail::jsonb, :ran_at)
ON CONFLICT (day, broker, venue, symbol) DO UPDATE SET
    status = EXCLUDED.status, complete = EXCLUDED.complete, ticks_before = EXCLUDED.ticks_before,
    ticks_after = EXCLUDED.ticks_after, gaps_found = EXCLUDED.gaps_found, ticks_recovered = EXCLUDED.ticks_recovered,
    volume_recovered = EXCLUDED.volume_recovered, minutes_disagreeing = EXCLUDED.minutes_disagreeing,
    detail = EXCLUDED.detail, ran_at = EXCLUDED.ran_at

-- name: replace_universe
-- The day's (venue, symbol) pairs, replaced as a whole (in the caller's transaction).
DELETE FROM {schema}.universe WHERE day = :day

-- name: insert_universe
INSERT INTO {schema}.universe (day, venue, symbol, source) VALUES (:day, :venue, :symbol, :source)
