-- PostgreSQL mode write: insert the staged batch, and fold exactly the rows this insert
-- added (RETURNING skips conflicts, so a redelivered batch changes no candle) into
-- candles_1m -> 5m -> 1h -> 1d, all in one statement of the caller's transaction.
-- Open/close are the trades with the lowest/highest cum_volume; merging a delta into a
-- stored candle keeps the side with the lower open_cum / higher close_cum, so the result
-- does not depend on arrival order. vwap = turnover / volume rounded half-up to 4 places,
-- in integer arithmetic (the same formula as bars/candles_postgres.sql). Buckets: date_bin
-- from origin 00:00 KST, so intraday buckets start at 09:00 KST and 1d = one KST trading date.
-- Ticks of days past the tick retention are stored but leave candles alone: those days'
-- candles were built while their ticks were kept, and after retention dropped the ticks a
-- re-inserted tick would look new and be counted twice.
WITH added AS (
    INSERT INTO {schema}.ticks (symbol, ts, price, volume, cum_volume, side, source, received_at)
    SELECT symbol, ts, price_e4 * 0.0001, volume, cum_volume, side, source, received_at
    FROM pg_temp.tv_stage
    ORDER BY symbol, ts, cum_volume
    ON CONFLICT (symbol, ts, cum_volume) DO NOTHING
    RETURNING symbol, ts, price, volume, cum_volume
),
delta_1m AS (
    SELECT symbol,
           date_bin('1 minute', ts, {origin}) AS bucket,
           (array_agg(price ORDER BY cum_volume))[1] AS open,
           max(price) AS high,
           min(price) AS low,
           (array_agg(price ORDER BY cum_volume DESC))[1] AS close,
           sum(volume)::bigint AS volume,
           count(*)::bigint AS trade_count,
           sum(price * volume) AS turnover,
           min(cum_volume) AS open_cum,
           max(cum_volume) AS close_cum
    FROM added
    WHERE ts >= %(candle_cutoff)s  -- days past tick retention keep the candles they have
    GROUP BY 1, 2
),
{rollups}
SELECT count(*) FROM added
