-- Insert the rows of tv_batch (TICK_SCHEMA) whose natural key is not stored yet.
-- The stored side is restricted to the batch's dates, time range and symbols, so the
-- anti-join reads a few files of the batch's own day, however large the lake grows.
INSERT INTO lake.ticks (symbol, ts, price, volume, cum_volume, side, source, received_at, trade_date)
SELECT b.symbol, b.ts, b.price, b.volume, b.cum_volume, b.side, b.source, b.received_at,
       -- KST date of ts. Korea has kept UTC+9 without DST since 1988, so plain arithmetic
       -- gives the same date as timezone('Asia/Seoul', ts), ~30x faster than ICU.
       DATE '1970-01-01' + CAST((epoch_us(b.ts) + 32400000000) // 86400000000 AS INTEGER)
FROM tv_batch AS b
ANTI JOIN (
    SELECT symbol, ts, cum_volume
    FROM lake.ticks
    WHERE trade_date BETWEEN $first_day AND $last_day
      AND ts BETWEEN $first_ts AND $last_ts
      AND symbol IN (SELECT DISTINCT symbol FROM tv_batch)
) AS s
ON b.symbol = s.symbol AND b.ts = s.ts AND b.cum_volume = s.cum_volume
ORDER BY b.symbol, b.cum_volume
