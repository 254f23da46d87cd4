-- Reads of the lake. {ticks} is lake.ticks, or the ticks as of a snapshot (time travel).

-- name: read_ticks
-- Ticks with :start <= ts < :end, optionally only some symbols and one venue.
-- {filters} is empty or "AND symbol IN (:symbol_0, ...)" — a constant list, so DuckDB
-- prunes row groups by their symbol min/max (files are sorted by symbol) — and/or "AND venue = ...".
SELECT venue, symbol, ts, price, volume, cum_volume, side, source, received_at
FROM {ticks}
WHERE trade_date BETWEEN :first_day AND :last_day
  AND ts >= :start AND ts < :end
  {filters}
ORDER BY symbol, venue, trade_date, cum_volume

-- name: count_day
SELECT count(*) FROM lake.ticks WHERE trade_date = :day

-- name: symbols_of_day
SELECT DISTINCT venue, symbol FROM lake.ticks WHERE trade_date = :day ORDER BY symbol, venue

-- name: read_universe
SELECT venue, symbol FROM lake.universe WHERE day = :day ORDER BY symbol, venue

-- name: has_ticks
SELECT 1 FROM lake.ticks WHERE trade_date BETWEEN :first_day AND :last_day AND ts >= :start AND ts < :end LIMIT 1

-- name: snapshot_id
SELECT id FROM lake.current_snapshot()

-- name: list_files
SELECT data_file FROM ducklake_list_files('lake', 'ticks')

-- name: columns_as_of
SELECT * FROM lake.ticks {at} LIMIT 0

-- name: ticks_v1_as_of
-- The ticks of a snapshot taken before the schema-2 upgrade, as schema 2 reads them (a `_NX`
-- code is venue NXT with the plain code, everything else KRX).
(SELECT CASE WHEN symbol LIKE '______\_NX' ESCAPE '\' THEN 'NXT' ELSE 'KRX' END AS venue, left(symbol, 6) AS symbol,
        ts, price, volume, cum_volume, side, source, received_at, trade_date
 FROM lake.ticks {at})

-- name: rows_with_keys
-- The stored rows holding any natural key of tv_batch (the archiver compares a redelivered
-- batch's trade values with them), pruned to the batch's trading dates and time range.
SELECT s.venue, s.symbol, s.ts, s.price, s.volume, s.cum_volume, s.side, s.source, s.received_at
FROM lake.ticks AS s
SEMI JOIN tv_batch AS b
  ON s.venue = b.venue AND s.symbol = b.symbol AND s.ts = b.ts AND s.cum_volume = b.cum_volume
WHERE s.trade_date BETWEEN :first_day AND :last_day
  AND s.ts BETWEEN :first_ts AND :last_ts
-- name: coverage
-- What the lake holds per KST date, venue and symbol (tickvault coverage / symbols).
SELECT trade_date AS day, venue, symbol, count(*) AS ticks, min(ts) AS first_ts, max(ts) AS last_ts
FROM {ticks}
WHERE trade_date BETWEEN :first_day AND :last_day AND ts >= :start AND ts < :end
GROUP BY 1, 2, 3
ORDER BY 1, 3, 2

-- name: integrity_status
SELECT day, venue, symbol, status FROM lake.integrity_report WHERE day BETWEEN :first_day AND :last_day

-- name: snapshots
-- Every snapshot of the lake, newest first: id, time, what changed, and tickvault's commit message.
SELECT snapshot_id AS id, snapshot_time AS time, changes, commit_message AS message
FROM lake.snapshots()
WHERE (:since IS NULL OR snapshot_time >= :since)
ORDER BY snapshot_id DESC
LIMIT :limit

-- name: minute_profile
-- The daily report: per venue, symbol and minute (epoch minute, UTC) of one KST date, the ticks,
-- their volume and how many of them recovery filled in (source 'recovery').
SELECT venue, symbol, epoch_us(ts) // 60000000 AS minute, count(*) AS ticks, sum(volume)::BIGINT AS volume,
       count(*) FILTER (WHERE source = 'recovery') AS recovered
FROM lake.ticks
WHERE trade_date = :day
GROUP BY ALL
ORDER BY venue, symbol, minute

-- name: live_files
-- The Parquet files of the current snapshot, from the catalog (files replaced by compaction stay
-- in storage until cleanup, so listing the directory or bucket gives wrong answers). Ticks are
-- never deleted, so delete_file stays NULL; a reader of the files alone could not apply one.
SELECT data_file, delete_file FROM ducklake_list_files('lake', 'ticks') ORDER BY data_file
