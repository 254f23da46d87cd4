-- name: candles
-- Bars from ticks on PostgreSQL (the hot store). Kept line-for-line parallel to
-- the lake's candles.sql: both stores must return identical rows for identical ticks.
--   {symbols} "TRUE" or a filter on k.symbol;  {venues} "TRUE" or a filter on k.venue
--   the trading-date grid arrives as parallel arrays (core.bars.day_grid)
-- Buckets: intraday = base_us + floor((ts_us - base_us) / width_us) * width_us (nonnegative
-- integer division); 1d/1w/1mo = the grid's label_us.
-- Open/close: first/last trade by (trading date, cum_volume) on one venue; with :consolidated
-- (venue ALL: both venues' trades in one bar) by (ts, venue KRX before NXT, cum_volume), since
-- each venue counts its own cum_volume. min/max over [ord, price] arrays pick the price of the
-- row with the smallest/largest ord without sorting.
-- vwap = turnover / volume rounded half-up to 4 decimals, computed in integers to stay exact.
WITH d AS (
    SELECT *
    FROM unnest(
        :day_no::bigint[], :base_us::bigint[], :label_us::bigint[],
        :reg_start_us::bigint[], :reg_end_us::bigint[]
    ) AS g(day_no, base_us, label_us, reg_start_us, reg_end_us)
), t AS (
    SELECT
        k.symbol,
        k.price,
        k.volume,
        CASE WHEN :consolidated
             THEN k.ts_us::numeric * 20000000000000000000 + (CASE WHEN k.venue = 'KRX' THEN 0 ELSE 10000000000000000000 END) + k.cum_volume
             ELSE d.day_no * 10000000000000 + k.cum_volume
        END AS ord,
        CASE WHEN :width_us::bigint > 0
             THEN d.base_us + ((k.ts_us - d.base_us) / greatest(:width_us::bigint, 1)) * :width_us::bigint
             ELSE d.label_us
        END AS bucket_us
    FROM (
        SELECT venue, symbol, price, volume, cum_volume, (extract(epoch FROM ts) * 1000000)::bigint AS ts_us
        FROM {schema}.ticks
        WHERE ts >= :start AND ts < :end
    ) AS k
    JOIN d ON d.day_no = (k.ts_us + 32400000000) / 86400000000
    WHERE {symbols} AND {venues}
      AND (:all_sessions OR (k.ts_us >= d.reg_start_us AND k.ts_us < d.reg_end_us))
), b AS (
    SELECT
        bucket_us,
        symbol,
        (min(ARRAY[ord::numeric, price]))[2] AS open,
        max(price) AS high,
        min(price) AS low,
        (max(ARRAY[ord::numeric, price]))[2] AS close,
        sum(volume)::bigint AS volume,
        count(*) AS trade_count,
        sum(price * volume) AS turnover
    FROM t
    GROUP BY bucket_us, symbol
)
SELECT
    bucket_us,
    symbol,
    open,
    high,
    low,
    close,
    volume,
    trade_count,
    turnover,
    (div(2 * turnover * 10000 + volume, 2 * volume) / 10000)::numeric(18, 4) AS vwap,
    :venue_label::text AS venue
FROM b
ORDER BY symbol COLLATE "C", bucket_us
