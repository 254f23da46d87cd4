COPY pg_temp.tv_stage (symbol, ts, price_e4, volume, cum_volume, side, source, received_at) FROM STDIN (FORMAT binary)
