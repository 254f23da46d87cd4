-- Physical layout: one partition per KST trading date, files sorted so one symbol's
-- trades are contiguous and in trade order, zstd-compressed Parquet. Tick data is
-- never inlined in the catalog (every tick lives in a plain Parquet file); the tiny
-- checkpoint table is inlined so a commit does not leave a Parquet file per batch.
ALTER TABLE lake.ticks SET PARTITIONED BY (trade_date);
ALTER TABLE lake.ticks SET SORTED BY (symbol, cum_volume);
CALL lake.set_option('parquet_compression', 'zstd');
CALL lake.set_option('data_inlining_row_limit', 0, table_name => 'ticks');
CALL lake.set_option('data_inlining_row_limit', 100, table_name => 'ingest_checkpoint');
