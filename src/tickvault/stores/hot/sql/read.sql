-- Reads of the hot store. {schema} is this installation's schema.

-- name: read_ticks
-- CSV out, parsed by pyarrow: exact decimals as text, instants as epoch microseconds. Every
-- non-null text is quoted (FORCE_QUOTE) and only unquoted empty fields are NULL, so a source
-- or side that spells "null" or "nan" reads back as that text, never as NULL.
COPY (
    SELECT venue,
           symbol,
           (extract(epoch FROM ts) * 1000000)::bigint,
           price::text,
           volume,
           cum_volume,
           side,
           source,
           (extract(epoch FROM received_at) * 1000000)::bigint
    FROM {schema}.ticks
    WHERE ts >= {start} AND ts < {end} {filters}
    ORDER BY symbol, venue, (ts AT TIME ZONE 'Asia/Seoul')::date, cum_volume, ts
) TO STDOUT (FORMAT csv, FORCE_QUOTE (venue, symbol, side, source))

-- name: count_ticks
SELECT count(*) FROM {schema}.ticks WHERE ts >= :start AND ts < :end

-- name: has_ticks
-- Does the hot store hold any tick in [start, end)? One KST date = one partition/chunk, so
-- this touches a single partition and stops at its first row.
SELECT 1 FROM {schema}.ticks WHERE ts >= :start AND ts < :end LIMIT 1

-- name: symbols_of_day
SELECT DISTINCT venue, symbol FROM {schema}.ticks WHERE ts >= :start AND ts < :end ORDER BY symbol, venue

-- name: read_universe
SELECT venue, symbol FROM {schema}.universe WHERE day = :day ORDER BY symbol, venue

-- name: rows_with_keys
-- The stored rows holding any of the given natural keys (the archiver compares a redelivered
-- batch's trade values with them). Typed fetch: no text round trip.
SELECT t.venue, t.symbol, t.ts, t.price, t.volume, t.cum_volume, t.side, t.source, t.received_at
FROM unnest(:venues::text[], :symbols::text[], :ts::timestamptz[], :cum_volumes::bigint[]) AS k(venue, symbol, ts, cum_volume)
JOIN {schema}.ticks AS t
  ON t.venue = k.venue AND t.symbol = k.symbol AND t.ts = k.ts AND t.cum_volume = k.cum_volume
