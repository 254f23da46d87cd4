-- name: candles
-- Bars from ticks on DuckDB (the lake). Kept line-for-line parallel to the hot store's candles.sql:
-- both stores must return identical rows for identical ticks.
--   {ticks}   table expression holding TICK_SCHEMA rows (e.g. lake.ticks AT (VERSION => 7))
--   {days}    trading-date grid built in Python (core.bars.day_grid): day_no, base_us, label_us,
--             reg_start_us, reg_end_us; a tick on a date missing from it (weekend, holiday) is dropped
--   {symbols} "TRUE" or a filter on k.symbol;  {venues} "TRUE" or a filter on k.venue
--   {prune}   "TRUE" or a filter on the lake's partition column (k.trade_date) so DuckLake skips files
-- Buckets: intraday = base_us + floor((ts_us - base_us) / width_us) * width_us, where base_us is the
-- session open minus whole widths so that it lies at or before the KST midnight (nonnegative
-- division, same result in both engines); 1d/1w/1mo = the grid's label_us.
-- Open/close: first/last trade by (trading date, cum_volume) on one venue, never by ts alone
-- (1-second resolution); with :consolidated (venue ALL) by (ts, venue KRX before NXT, cum_volume).
-- Turnover is summed in integer units of 0.0001 KRW (HUGEINT sum: exact and much faster than a
-- DECIMAL(38,4) sum); vwap = turnover / volume rounded half-up to 4 decimals, also in integers.
WITH t AS (
    SELECT
        k.symbol,
        k.price,
        k.volume,
        CAST(k.price * 10000 AS BIGINT) * k.volume AS pv_units,
        CASE WHEN :consolidated
             THEN CAST(epoch_us(k.ts) AS HUGEINT) * 20000000000000000000 + (CASE WHEN k.venue = 'KRX' THEN 0 ELSE 10000000000000000000 END) + k.cum_volume
             ELSE d.day_no * 10000000000000 + k.cum_volume
        END AS ord,
        CASE WHEN :width_us > 0
             THEN d.base_us + ((epoch_us(k.ts) - d.base_us) // greatest(:width_us, 1)) * :width_us
             ELSE d.label_us
        END AS bucket_us
    FROM {ticks} AS k
    JOIN {days} AS d ON d.day_no = (epoch_us(k.ts) + 32400000000) // 86400000000
    WHERE k.ts >= :start AND k.ts < :end
      AND {prune}
      AND {symbols} AND {venues}
      AND (:all_sessions OR (epoch_us(k.ts) >= d.reg_start_us AND epoch_us(k.ts) < d.reg_end_us))
), b AS (
    SELECT
        bucket_us,
        symbol,
        arg_min(price, ord) AS open,
        max(price) AS high,
        min(price) AS low,
        arg_max(price, ord) AS close,
        sum(volume) AS volume,
        count(*) AS trade_count,
        sum(pv_units) AS turnover_units
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
    CAST(CAST(turnover_units AS DECIMAL(38, 0)) * CAST(0.0001 AS DECIMAL(4, 4)) AS DECIMAL(38, 4)) AS turnover,
    CAST(CAST((2 * turnover_units + volume) // (2 * volume) AS DECIMAL(38, 0)) * CAST(0.0001 AS DECIMAL(4, 4)) AS DECIMAL(18, 4)) AS vwap,
    CAST(:venue_label AS VARCHAR) AS venue
FROM b
ORDER BY symbol, bucket_us
