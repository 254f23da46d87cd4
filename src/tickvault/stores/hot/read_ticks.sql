-- CSV out, parsed by pyarrow: exact decimals as text, instants as epoch microseconds.
COPY (
    SELECT symbol,
           (extract(epoch FROM ts) * 1000000)::bigint,
           price::text,
           volume,
           cum_volume,
           side,
           source,
           (extract(epoch FROM received_at) * 1000000)::bigint
    FROM {schema}.ticks
    WHERE ts >= {start} AND ts < {end} {symbol_filter}
    ORDER BY symbol, (ts AT TIME ZONE 'Asia/Seoul')::date, cum_volume, ts
) TO STDOUT (FORMAT csv)
