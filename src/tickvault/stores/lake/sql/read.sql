-- Reads of the lake; {at} is empty or a time-travel clause (AT (VERSION => :as_of) / AT (TIMESTAMP => :as_of)).

-- name: read_ticks
-- Ticks with :start <= ts < :end, as of a snapshot, optionally only some symbols.
-- {at} is empty or "AT (VERSION => :as_of)" / "AT (TIMESTAMP => :as_of)";
-- {symbols} is empty or "AND symbol IN (:symbol_0, ...)" — a constant list, so DuckDB
-- prunes row groups by their symbol min/max (files are sorted by symbol).
SELECT symbol, ts, price, volume, cum_volume, side, source, received_at
FROM lake.ticks {at}
WHERE trade_date BETWEEN :first_day AND :last_day
  AND ts >= :start AND ts < :end
  {symbols}
ORDER BY symbol, trade_date, cum_volume

-- name: count_day
SELECT count(*) FROM lake.ticks WHERE trade_date = :day

-- name: symbols_of_day
SELECT DISTINCT symbol FROM lake.ticks WHERE trade_date = :day ORDER BY symbol

-- name: has_ticks
SELECT 1 FROM lake.ticks WHERE trade_date BETWEEN :first_day AND :last_day AND ts >= :start AND ts < :end LIMIT 1

-- name: snapshot_id
SELECT id FROM lake.current_snapshot()

-- name: list_files
SELECT data_file FROM ducklake_list_files('lake', 'ticks')
