-- TimescaleDB mode: continuous aggregates for the candles, compression and the policies
-- (timescale.py explains the offsets).

-- name: candles_1m
-- 1-minute candles straight from ticks. Open/close by cum_volume (ts has one-second
-- resolution, so first(price, ts) would be arbitrary within a second); open_cum/close_cum
-- are carried so every higher level stays exact. Real-time aggregation on.
CREATE MATERIALIZED VIEW IF NOT EXISTS {schema}.candles_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', ts, {origin}) AS bucket,
       venue,
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
GROUP BY 1, 2, 3
WITH NO DATA

-- name: candles_level
-- A hierarchical level on top of the one below: first/last ordered by the carried
-- open_cum/close_cum, so a daily open is the day's first trade, not an arbitrary minute's.
CREATE MATERIALIZED VIEW IF NOT EXISTS {schema}.{view}
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket({width}, bucket, {origin}) AS bucket,
       venue,
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
GROUP BY 1, 2, 3
WITH NO DATA

-- name: realtime
ALTER MATERIALIZED VIEW {schema}.{view} SET (timescaledb.materialized_only = false)

-- name: materialized_only
ALTER MATERIALIZED VIEW {schema}.{view} SET (timescaledb.materialized_only = true)

-- name: compression_enabled
SELECT compression_enabled FROM timescaledb_information.hypertables
WHERE hypertable_schema = :schema AND hypertable_name = 'ticks'

-- name: enable_compression
-- Segment by venue and symbol, order by cum_volume: one symbol's day on one venue compresses
-- into a sorted run.
ALTER TABLE {schema}.ticks SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'venue, symbol',
    timescaledb.compress_orderby = 'cum_volume'
)

-- name: find_policy
SELECT job_id,
       schedule_interval,
       (config ->> 'start_offset')::interval,
       (config ->> 'end_offset')::interval,
       (config ->> 'drop_after')::interval,
       (config ->> 'compress_after')::interval
FROM timescaledb_information.jobs
WHERE hypertable_schema = :schema AND hypertable_name = :relation AND proc_name = :proc
ORDER BY job_id

-- name: remove_policy
SELECT delete_job(:job_id)

-- name: add_refresh_policy
SELECT add_continuous_aggregate_policy(:relation::regclass,
    start_offset => :start_offset::interval, end_offset => :end_offset::interval,
    schedule_interval => :schedule::interval)

-- name: add_retention_policy
SELECT add_retention_policy(:relation::regclass, drop_after => :drop_after::interval, schedule_interval => :schedule::interval)

-- name: add_compression_policy
SELECT add_compression_policy(:relation::regclass, compress_after => :compress_after::interval, schedule_interval => :schedule::interval)

-- name: refresh
CALL refresh_continuous_aggregate(:relation::regclass, :start::timestamptz, :end::timestamptz)

-- name: lock_schema
SELECT pg_advisory_lock(hashtext('tickvault.init.' || :schema))

-- name: unlock_schema
SELECT pg_advisory_unlock(hashtext('tickvault.init.' || :schema))

-- name: decompress_all
-- Schema 1 -> 2 needs the ticks uncompressed (a new unique key and segmentby); compression
-- policy recompresses them later.
SELECT count(decompress_chunk(c, true)) FROM show_chunks({ticks_name}) c

-- name: migrate_ticks_v2
-- Schema 1 -> 2 of the hypertable (chunks decompressed first, in the caller's transaction).
ALTER TABLE {schema}.ticks SET (timescaledb.compress = false);
ALTER TABLE {schema}.ticks ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.ticks DROP CONSTRAINT IF EXISTS ticks_natural_key;
UPDATE {schema}.ticks SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.ticks ADD CONSTRAINT ticks_natural_key UNIQUE (venue, symbol, ts, cum_volume)

-- name: retire_cagg
-- Schema 1 -> 2: the venue-less candle view of one level is kept, frozen, as history under a
-- new name (its candles may reach back further than the ticks); the new per-venue view
-- replaces it.
ALTER MATERIALIZED VIEW {schema}.{view} RENAME TO {retired}
