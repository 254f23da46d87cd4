-- The write path: binary COPY into a per-connection staging table, then one INSERT ... ON
-- CONFLICT DO NOTHING into ticks (PostgreSQL mode folds the rows it really added into the
-- candles in the same statement, or with hot_candle_fold_ms > 0 appends their 1m delta to
-- candle_delta for fold_deltas), then the checkpoint — all in one transaction.

-- name: create_stage
-- Per-connection staging table for the binary COPY (prices as exact scaled integers).
CREATE TEMP TABLE IF NOT EXISTS tv_stage (
    venue       text,
    symbol      text,
    ts          timestamptz,
    price_e4    bigint,
    volume      bigint,
    cum_volume  bigint,
    side        text,
    source      text,
    received_at timestamptz
) ON COMMIT DELETE ROWS

-- name: copy_stage
COPY pg_temp.tv_stage (venue, symbol, ts, price_e4, volume, cum_volume, side, source, received_at) FROM STDIN (FORMAT binary)

-- name: insert_timescale
-- TimescaleDB mode: candles come from continuous aggregates, so only the ticks are written.
INSERT INTO {schema}.ticks (venue, symbol, ts, price, volume, cum_volume, side, source, received_at)
SELECT venue, symbol, ts, price_e4 * 0.0001, volume, cum_volume, side, source, received_at
FROM pg_temp.tv_stage
ON CONFLICT (venue, symbol, ts, cum_volume) DO NOTHING

-- name: insert_postgres
-- PostgreSQL mode: insert the staged batch, and fold exactly the rows this insert added
-- (RETURNING skips conflicts, so a redelivered batch changes no candle) into
-- candles_1m -> 5m -> 1h -> 1d, all in one statement of the caller's transaction.
-- Open/close are the trades with the lowest/highest cum_volume; merging a delta into a
-- stored candle keeps the side with the lower open_cum / higher close_cum, so the result
-- does not depend on arrival order. vwap = turnover / volume rounded half-up to 4 places,
-- in integer arithmetic (the same formula as read.sql's candles). Buckets: date_bin from
-- origin 00:00 KST, so intraday buckets start at 09:00 KST and 1d = one KST trading date.
-- Ticks of days past the tick retention are stored but leave candles alone: those days'
-- candles were built while their ticks were kept, and after retention dropped the ticks a
-- re-inserted tick would look new and be counted twice.
-- {rollups} holds a rollup + merge_candles pair per level.
WITH added AS (
    INSERT INTO {schema}.ticks (venue, symbol, ts, price, volume, cum_volume, side, source, received_at)
    SELECT venue, symbol, ts, price_e4 * 0.0001, volume, cum_volume, side, source, received_at
    FROM pg_temp.tv_stage
    ORDER BY venue, symbol, ts, cum_volume
    ON CONFLICT (venue, symbol, ts, cum_volume) DO NOTHING
    RETURNING venue, symbol, ts, price, volume, cum_volume
),
delta_1m AS (
    SELECT venue,
           symbol,
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
    WHERE ts >= :candle_cutoff  -- days past tick retention keep the candles they have
    GROUP BY 1, 2, 3
),
{rollups}
SELECT count(*) FROM added

-- name: rollup
-- One candle level from the level below, inside insert_postgres.
delta_{level} AS (
    SELECT venue,
           symbol,
           date_bin({width}, bucket, {origin}) AS bucket,
           (array_agg(open ORDER BY open_cum))[1] AS open,
           max(high) AS high,
           min(low) AS low,
           (array_agg(close ORDER BY close_cum DESC))[1] AS close,
           sum(volume)::bigint AS volume,
           sum(trade_count)::bigint AS trade_count,
           sum(turnover) AS turnover,
           min(open_cum) AS open_cum,
           max(close_cum) AS close_cum
    FROM delta_{source}
    GROUP BY 1, 2, 3
)

-- name: merge_candles
-- Fold one level's delta into its stored candles, inside insert_postgres.
merged_{level} AS (
    INSERT INTO {schema}.{table} AS c
        (bucket, venue, symbol, open, high, low, close, volume, trade_count, turnover, vwap, open_cum, close_cum)
    SELECT bucket, venue, symbol, open, high, low, close, volume, trade_count, turnover,
           (div(2 * turnover * 10000 + volume, 2 * volume) / 10000)::numeric(18,4), open_cum, close_cum
    FROM delta_{level}
    ORDER BY venue, symbol, bucket
    ON CONFLICT (venue, symbol, bucket) DO UPDATE SET
        open        = CASE WHEN EXCLUDED.open_cum < c.open_cum THEN EXCLUDED.open ELSE c.open END,
        open_cum    = least(c.open_cum, EXCLUDED.open_cum),
        high        = greatest(c.high, EXCLUDED.high),
        low         = least(c.low, EXCLUDED.low),
        close       = CASE WHEN EXCLUDED.close_cum > c.close_cum THEN EXCLUDED.close ELSE c.close END,
        close_cum   = greatest(c.close_cum, EXCLUDED.close_cum),
        volume      = c.volume + EXCLUDED.volume,
        trade_count = c.trade_count + EXCLUDED.trade_count,
        turnover    = c.turnover + EXCLUDED.turnover,
        vwap        = (div(2 * (c.turnover + EXCLUDED.turnover) * 10000 + (c.volume + EXCLUDED.volume),
                            2 * (c.volume + EXCLUDED.volume)) / 10000)::numeric(18,4)
    RETURNING 1
)

-- name: log_delta
-- Deferred candles (hot_candle_fold_ms > 0), inside insert_postgres in place of the merges:
-- append the batch's 1m delta; fold_deltas merges it later.
logged AS (
    INSERT INTO {schema}.candle_delta
        (venue, symbol, bucket, open, high, low, close, volume, trade_count, turnover, open_cum, close_cum)
    SELECT venue, symbol, bucket, open, high, low, close, volume, trade_count, turnover, open_cum, close_cum
    FROM delta_1m
    RETURNING 1
)

-- name: fold_deltas
-- Take every logged delta (rows another fold already took are skipped) and merge them into
-- candles_1m -> 5m -> 1h -> 1d with the same rollup / merge_candles blocks as insert_postgres,
-- in one transaction: each delta is merged exactly once, and merges commute, so the order of
-- batches and folds does not matter. {rollups} starts with the 1m level from delta_taken.
WITH delta_taken AS (
    DELETE FROM {schema}.candle_delta
    RETURNING venue, symbol, bucket, open, high, low, close, volume, trade_count, turnover, open_cum, close_cum
),
{rollups}
SELECT count(*) FROM delta_taken

-- name: set_checkpoint
-- Keep the highest id: with XAUTOCLAIM, batches can commit out of id order.
INSERT INTO {schema}.ingest_checkpoint AS c (stream, grp, last_id, updated_at)
VALUES (:stream, :grp, :last_id, now())
ON CONFLICT (stream, grp) DO UPDATE SET
    last_id = CASE
        WHEN (split_part(EXCLUDED.last_id, '-', 1)::numeric, split_part(EXCLUDED.last_id, '-', 2)::numeric)
           > (split_part(c.last_id, '-', 1)::numeric, split_part(c.last_id, '-', 2)::numeric)
        THEN EXCLUDED.last_id ELSE c.last_id END,
    updated_at = now()

-- name: get_checkpoint
SELECT last_id FROM {schema}.ingest_checkpoint WHERE stream = :stream AND grp = :grp

-- name: copy_metrics
COPY {schema}.metrics (ts, name, labels, value) FROM STDIN

-- name: lock_ticks_for_restage
-- Archivers' inserts wait while conflicting duplicates are settled (PostgreSQL mode): a tick
-- committed between restage_day and delete_day_candles would otherwise lose its candle share.
LOCK TABLE {schema}.ticks IN SHARE ROW EXCLUSIVE MODE

-- name: restage_day
-- Settling conflicting duplicates (PostgreSQL mode), after the settled rows were staged: every
-- other stored tick of one (venue, symbol, trading date) moves to the stage too and the rows of
-- the settled keys are deleted, so insert_postgres re-inserts the whole day and builds its
-- candles again by the one candle code path (delete_day_candles clears them first).
WITH moved AS (
    DELETE FROM {schema}.ticks
    WHERE venue = :venue AND symbol = :symbol AND ts >= :start AND ts < :end
    RETURNING venue, symbol, ts, price, volume, cum_volume, side, source, received_at
)
INSERT INTO pg_temp.tv_stage (venue, symbol, ts, price_e4, volume, cum_volume, side, source, received_at)
SELECT m.venue, m.symbol, m.ts, (m.price * 10000)::bigint, m.volume, m.cum_volume, m.side, m.source, m.received_at
FROM moved AS m
WHERE NOT EXISTS (
    SELECT 1 FROM pg_temp.tv_stage AS s
    WHERE s.venue = m.venue AND s.symbol = m.symbol AND s.ts = m.ts AND s.cum_volume = m.cum_volume
)

-- name: delete_day_candles
-- One candle level of one (venue, symbol, trading date), before restage_day's re-insert rebuilds
-- it. Days past the tick retention keep their candles (insert_postgres leaves them alone too).
DELETE FROM {schema}.{table}
WHERE venue = :venue AND symbol = :symbol AND bucket >= :start AND bucket < :end AND bucket >= :candle_cutoff

-- name: delete_staged_keys
-- Settling conflicting duplicates (TimescaleDB mode): the stored rows of the staged keys go, and
-- insert_timescale then writes the staged values; the caller refreshes the day's candles.
DELETE FROM {schema}.ticks AS t
USING pg_temp.tv_stage AS s
WHERE t.venue = s.venue AND t.symbol = s.symbol AND t.ts = s.ts AND t.cum_volume = s.cum_volume
