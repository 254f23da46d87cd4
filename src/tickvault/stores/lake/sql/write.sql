-- Writes: every tick batch is an anti-join insert and commits with its checkpoint. Small
-- commits (at most the ticks table's data_inlining_row_limit rows) land in the catalog as
-- inlined rows, which the anti-join, reads and time travel see like Parquet rows; the archiver
-- flushes them to Parquet by size and age, and compaction flushes what is left.

-- name: insert_new
-- Insert the rows of tv_batch (TICK_SCHEMA) whose natural key is not stored yet.
-- The stored side is restricted to the batch's dates, time range and symbols (:symbols, the
-- batch's distinct ones, as a list: ~10% cheaper per commit than a subquery on tv_batch), so
-- the anti-join reads a few files of the batch's own day, however large the lake grows.
-- No ORDER BY: the table is SORTED BY (symbol, venue, cum_volume) (schema.sql, layout), so
-- DuckLake sorts every file it writes; sorting here as well cost ~10% of a commit.
INSERT INTO lake.ticks (venue, symbol, ts, price, volume, cum_volume, side, source, received_at, trade_date)
SELECT b.venue, b.symbol, b.ts, b.price, b.volume, b.cum_volume, b.side, b.source, b.received_at,
       -- the trading date of ts (core.calendar.trading_date: its date at UTC+9; validation keeps
       -- ts within 2000..2100, where that is Asia/Seoul's date), ~30x faster than ICU.
       DATE '1970-01-01' + CAST((epoch_us(b.ts) + 32400000000) // 86400000000 AS INTEGER)
FROM tv_batch AS b
ANTI JOIN (
    SELECT venue, symbol, ts, cum_volume
    FROM lake.ticks
    WHERE trade_date BETWEEN :first_day AND :last_day
      AND ts BETWEEN :first_ts AND :last_ts
      AND symbol IN (SELECT unnest(:symbols))
) AS s
ON b.venue = s.venue AND b.symbol = s.symbol AND b.ts = s.ts AND b.cum_volume = s.cum_volume

-- name: delete_keys
-- Settling conflicting duplicates (reconcile --repair): the stored rows of tv_batch's keys go
-- before insert_new writes the settled values, in the same transaction. Lake candles are
-- computed from the ticks when read, so nothing else changes.
DELETE FROM lake.ticks AS t
USING tv_batch AS b
WHERE t.trade_date BETWEEN :first_day AND :last_day
  AND t.venue = b.venue AND t.symbol = b.symbol AND t.ts = b.ts AND t.cum_volume = b.cum_volume

-- name: set_checkpoint
-- Append, never update: a DELETE on the (inlined) checkpoint table costs ~30 ms per commit,
-- an INSERT ~1 ms. The highest id per group counts (batches may commit out of id order, as in
-- the hot store); compaction prunes the other rows.
INSERT INTO lake.ingest_checkpoint VALUES (:stream, :group, :last_id, now())

-- name: get_checkpoint
SELECT last_id FROM lake.ingest_checkpoint
WHERE stream = :stream AND consumer_group = :group
ORDER BY CAST(split_part(last_id, '-', 1) AS HUGEINT) DESC, CAST(split_part(last_id, '-', 2) AS HUGEINT) DESC
LIMIT 1

-- name: replace_universe
DELETE FROM lake.universe WHERE day = :day;
INSERT INTO lake.universe SELECT day, venue, symbol, source, now() FROM tv_universe

-- name: ticks_inline_limit
-- The ticks table's data inlining row limit as stored in the catalog (none: DuckLake's default).
SELECT value FROM ducklake_options('lake')
WHERE option_name = 'data_inlining_row_limit' AND scope_entry = 'main.ticks'

-- name: set_ticks_inline_limit
-- Persisted in the catalog, so every writer (archiver, recovery, users) inlines alike.
CALL lake.set_option('data_inlining_row_limit', {limit}, table_name => 'ticks')

-- name: flush_inlined_ticks
-- Move inlined tick rows into Parquet files (partitioned and sorted like any other; snapshots
-- before the flush stay readable).
CALL ducklake_flush_inlined_data('lake', table_name => 'ticks')
-- name: commit_message
-- Say why this commit happened (archiver batch, recovery, reconcile, rebuild, …): `tickvault snapshots` shows it.
CALL lake.set_commit_message('tickvault', :message)
