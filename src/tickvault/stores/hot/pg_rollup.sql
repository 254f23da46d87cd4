delta_{level} AS (
    SELECT symbol,
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
    GROUP BY 1, 2
)
