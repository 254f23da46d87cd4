-- 1-minute candles straight from ticks. Open/close by cum_volume (ts has one-second
-- resolution, so first(price, ts) would be arbitrary within a second); open_cum/close_cum
-- are carried so every higher level stays exact. Real-time aggregation on.
CREATE MATERIALIZED VIEW IF NOT EXISTS {schema}.candles_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', ts, {origin}) AS bucket,
       symbol,
       first(price, cum_volume)::numeric(18,4) AS open,
       max(price)::numeric(18,4) AS high,
       min(price)::numeric(18,4) AS low,
       last(price, cum_volume)::numeric(18,4) AS close,
       sum(volume)::bigint AS volume,
       count(*)::bigint AS trade_count,
       sum(price * volume) AS turnover,
       (div(2 * sum(price * volume) * 10000 + sum(volume), 2 * sum(volume)) / 10000)::numeric(18,4) AS vwap,
       min(cum_volume) AS open_cum,
       max(cum_volume) AS close_cum
FROM {schema}.ticks
GROUP BY 1, 2
WITH NO DATA
