-- TimescaleDB mode: candles come from continuous aggregates, so only the ticks are written.
INSERT INTO {schema}.ticks (symbol, ts, price, volume, cum_volume, side, source, received_at)
SELECT symbol, ts, price_e4 * 0.0001, volume, cum_volume, side, source, received_at
FROM pg_temp.tv_stage
ON CONFLICT (symbol, ts, cum_volume) DO NOTHING
