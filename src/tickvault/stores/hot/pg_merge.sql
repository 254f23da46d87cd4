merged_{level} AS (
    INSERT INTO {schema}.{table} AS c
        (bucket, symbol, open, high, low, close, volume, trade_count, turnover, vwap, open_cum, close_cum)
    SELECT bucket, symbol, open, high, low, close, volume, trade_count, turnover,
           (div(2 * turnover * 10000 + volume, 2 * volume) / 10000)::numeric(18,4), open_cum, close_cum
    FROM delta_{level}
    ORDER BY symbol, bucket
    ON CONFLICT (symbol, bucket) DO UPDATE SET
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
