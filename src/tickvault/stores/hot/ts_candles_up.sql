-- A hierarchical level on top of the one below: first/last ordered by the carried
-- open_cum/close_cum, so a daily open is the day's first trade, not an arbitrary minute's.
CREATE MATERIALIZED VIEW IF NOT EXISTS {schema}.{view}
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket({width}, bucket, {origin}) AS bucket,
       symbol,
       first(open, open_cum)::numeric(18,4) AS open,
       max(high)::numeric(18,4) AS high,
       min(low)::numeric(18,4) AS low,
       last(close, close_cum)::numeric(18,4) AS close,
       sum(volume)::bigint AS volume,
       sum(trade_count)::bigint AS trade_count,
       sum(turnover) AS turnover,
       (div(2 * sum(turnover) * 10000 + sum(volume), 2 * sum(volume)) / 10000)::numeric(18,4) AS vwap,
       min(open_cum) AS open_cum,
       max(close_cum) AS close_cum
FROM {schema}.{source}
GROUP BY 1, 2
WITH NO DATA
