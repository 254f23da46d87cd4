-- The lake's tables and physical layout, created idempotently by Lake.init().

-- name: create_tables
-- ticks: the columns of model.TICK_SCHEMA plus trade_date (the KST date of ts), which
-- partitions the data files (data/main/ticks/trade_date=YYYY-MM-DD/*.parquet).
CREATE TABLE IF NOT EXISTS lake.ticks (
    symbol      VARCHAR        NOT NULL,
    ts          TIMESTAMPTZ    NOT NULL,
    price       DECIMAL(18, 4) NOT NULL,
    volume      BIGINT         NOT NULL,
    cum_volume  BIGINT         NOT NULL,
    side        VARCHAR,
    source      VARCHAR        NOT NULL,
    received_at TIMESTAMPTZ,
    trade_date  DATE           NOT NULL
);

-- Per (stream, consumer group) the newest row holds the last stream id committed with data.
CREATE TABLE IF NOT EXISTS lake.ingest_checkpoint (
    stream         VARCHAR     NOT NULL,
    consumer_group VARCHAR     NOT NULL,
    last_id        VARCHAR     NOT NULL,
    committed_at   TIMESTAMPTZ NOT NULL
);

-- name: tables_exist
SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' AND table_name IN ('ticks', 'ingest_checkpoint')

-- name: layout
-- Physical layout: one partition per KST trading date, files sorted so one symbol's
-- trades are contiguous and in trade order, zstd-compressed Parquet. Tick data is
-- never inlined in the catalog (every tick lives in a plain Parquet file); the tiny
-- checkpoint table is inlined so a commit does not leave a Parquet file per batch.
ALTER TABLE lake.ticks SET PARTITIONED BY (trade_date);
ALTER TABLE lake.ticks SET SORTED BY (symbol, cum_volume);
CALL lake.set_option('parquet_compression', 'zstd');
CALL lake.set_option('data_inlining_row_limit', 0, table_name => 'ticks');
CALL lake.set_option('data_inlining_row_limit', 100, table_name => 'ingest_checkpoint');

-- name: layout_done
-- True once layout.sql ran to its end (its last statement sets this option).
SELECT count(*) > 0 FROM ducklake_options('lake')
WHERE option_name = 'data_inlining_row_limit' AND scope_entry = 'main.ingest_checkpoint'
