-- The questions sync and recovery ask the lake: the same columns (and checksum) as
-- hot/sql/sync.sql, so the two stores' answers compare directly. :first_day and :last_day are
-- the trading dates of :start and :end (core.calendar.trading_date), pruning by trade_date.

-- name: minute_fingerprints
-- DuckDB twin of the hot store's minute_fingerprints (same columns, same checksum); see that file for the why.
-- The lake has no primary key, so natural keys are deduplicated first and the extra copies
-- counted as duplicates. Continuity runs per (venue, symbol).
WITH keyed AS (
    SELECT venue, symbol, cum_volume, max(volume) AS volume, count(*) AS copies, epoch_us(ts) AS ts_us,
           CAST(min(price) * 10000 AS BIGINT) AS price_e4,
           min(CASE side WHEN 'B' THEN 1 WHEN 'S' THEN 2 ELSE 0 END) AS side_code
    FROM lake.ticks
    WHERE ts >= :start AND ts < :end
      AND trade_date BETWEEN :first_day AND :last_day
      AND (len(:symbols::VARCHAR[]) = 0 OR list_contains(:symbols::VARCHAR[], symbol))
    GROUP BY venue, symbol, ts, cum_volume
), ordered AS (
    SELECT venue, symbol, cum_volume, volume, copies, ts_us,
           (((cum_volume % 2147483647) * 48271 + ts_us % 2147483629) % 2147483647 * 16807
            + (price_e4 % 2147483629) * 31 + (volume % 2147483629) * 7 + side_code) % 2147483647 + 1 AS x,
           cum_volume - coalesce(lag(cum_volume) OVER w, 0) - volume AS missing
    FROM keyed
    WINDOW w AS (PARTITION BY venue, symbol ORDER BY cum_volume, ts_us)
)
SELECT venue,
       symbol,
       ts_us // 60000000 AS minute,
       count(*) AS ticks,
       sum(volume)::BIGINT AS volume,
       max(cum_volume) AS max_cum_volume,
       sum((x * x) % 2305843009213693951) AS checksum,
       sum(copies - 1)::BIGINT AS duplicates,
       count(*) FILTER (WHERE missing <> 0) AS breaks,
       coalesce(sum(missing) FILTER (WHERE missing > 0), 0)::BIGINT AS missing_volume
FROM ordered
GROUP BY venue, symbol, minute
ORDER BY venue, symbol, minute

-- name: breaks
-- DuckDB twin of the hot store's breaks.
WITH keyed AS (
    SELECT venue, symbol, ts, cum_volume, max(volume) AS volume
    FROM lake.ticks
    WHERE ts >= :start AND ts < :end
      AND trade_date BETWEEN :first_day AND :last_day
      AND (len(:symbols::VARCHAR[]) = 0 OR list_contains(:symbols::VARCHAR[], symbol))
    GROUP BY venue, symbol, ts, cum_volume
), ordered AS (
    SELECT venue, symbol, ts, cum_volume, volume,
           lag(ts) OVER w AS prev_ts,
           coalesce(lag(cum_volume) OVER w, 0) AS prev_cum_volume,
           lead(cum_volume) OVER w IS NULL AS is_last
    FROM keyed
    WINDOW w AS (PARTITION BY venue, symbol ORDER BY cum_volume, ts)
)
SELECT venue, symbol, prev_ts, prev_cum_volume, ts, cum_volume, volume,
       cum_volume - prev_cum_volume - volume AS missing, is_last
FROM ordered
WHERE cum_volume - prev_cum_volume - volume <> 0 OR is_last
ORDER BY venue, symbol, cum_volume, ts

-- name: duplicate_keys
-- Natural keys stored more than once in the lake (it has no primary key; upserts anti-join).
SELECT venue, symbol, ts, cum_volume, count(*) AS copies
FROM lake.ticks
WHERE ts >= :start AND ts < :end
  AND trade_date BETWEEN :first_day AND :last_day
  AND (len(:symbols::VARCHAR[]) = 0 OR list_contains(:symbols::VARCHAR[], symbol))
GROUP BY venue, symbol, ts, cum_volume
HAVING count(*) > 1
ORDER BY venue, symbol, cum_volume, ts
LIMIT 1000

-- name: bounds
-- DuckDB twin of the hot store's bounds.
SELECT min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS ticks
FROM lake.ticks
WHERE ts >= :start AND ts < :end
  AND trade_date BETWEEN :first_day AND :last_day
  AND (len(:symbols::VARCHAR[]) = 0 OR list_contains(:symbols::VARCHAR[], symbol))

-- name: integrity_report_table
-- Lake twin of the hot store's integrity_report_table (DuckLake has no primary keys: rows are
-- replaced per day, venue and symbol). venue last, where the schema-1 upgrade adds it.
CREATE TABLE IF NOT EXISTS lake.integrity_report (
    day            DATE        NOT NULL,
    symbol         VARCHAR     NOT NULL,
    ticks          BIGINT      NOT NULL,
    volume         BIGINT      NOT NULL,
    gaps           INTEGER     NOT NULL,
    missing_volume BIGINT      NOT NULL,
    duplicates     BIGINT      NOT NULL,
    repaired_hot   BIGINT      NOT NULL,
    repaired_cold  BIGINT      NOT NULL,
    status         VARCHAR     NOT NULL,
    checked_at     TIMESTAMPTZ NOT NULL,
    venue          VARCHAR     DEFAULT 'KRX'
)

-- name: replace_integrity
-- Runs inside one transaction: the new rows replace the old ones of the same day, venues and
-- symbols, keeping the repair counts accumulated by earlier runs of the day.
CREATE OR REPLACE TEMP TABLE integrity_new AS
SELECT n.day, n.venue, n.symbol, n.ticks, n.volume, n.gaps, n.missing_volume, n.duplicates,
       n.repaired_hot + coalesce(o.repaired_hot, 0) AS repaired_hot,
       n.repaired_cold + coalesce(o.repaired_cold, 0) AS repaired_cold,
       CASE WHEN n.status = 'ok' AND coalesce(o.repaired_hot, 0) + coalesce(o.repaired_cold, 0) > 0 THEN 'repaired'
            ELSE n.status END AS status,
       n.checked_at
FROM integrity_rows n
LEFT JOIN lake.integrity_report o ON o.day = n.day AND o.venue = n.venue AND o.symbol = n.symbol;
DELETE FROM lake.integrity_report AS r
WHERE EXISTS (SELECT 1 FROM integrity_rows n WHERE n.day = r.day AND n.venue = r.venue AND n.symbol = r.symbol);
INSERT INTO lake.integrity_report (day, venue, symbol, ticks, volume, gaps, missing_volume, duplicates,
                                   repaired_hot, repaired_cold, status, checked_at)
SELECT day, venue, symbol, ticks, volume, gaps, missing_volume, duplicates, repaired_hot, repaired_cold, status, checked_at
FROM integrity_new;
DROP TABLE integrity_new;

-- name: read_integrity
SELECT day, venue, symbol, ticks, volume, gaps, missing_volume, duplicates, repaired_hot, repaired_cold, status, checked_at
FROM lake.integrity_report WHERE day = :day ORDER BY symbol, venue
