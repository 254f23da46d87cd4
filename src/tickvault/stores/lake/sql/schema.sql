-- The lake's tables and physical layout, created idempotently by Lake.init().

-- name: create_tables
-- ticks: the columns of core.wire.TICK_SCHEMA plus trade_date (the KST date of ts), which
-- partitions the data files (data/main/ticks/trade_date=YYYY-MM-DD/*.parquet). venue comes last,
-- where the upgrade of a schema-1 lake adds it, so every lake has the same column order.
CREATE TABLE IF NOT EXISTS lake.ticks (
    symbol      VARCHAR        NOT NULL,
    ts          TIMESTAMPTZ    NOT NULL,
    price       DECIMAL(18, 4) NOT NULL,
    volume      BIGINT         NOT NULL,
    cum_volume  BIGINT         NOT NULL,
    side        VARCHAR,
    source      VARCHAR        NOT NULL,
    received_at TIMESTAMPTZ,
    trade_date  DATE           NOT NULL,
    venue       VARCHAR        DEFAULT 'KRX'
);

-- Per (stream, consumer group) the row with the highest id is the last stream id committed with data.
CREATE TABLE IF NOT EXISTS lake.ingest_checkpoint (
    stream         VARCHAR     NOT NULL,
    consumer_group VARCHAR     NOT NULL,
    last_id        VARCHAR     NOT NULL,
    committed_at   TIMESTAMPTZ NOT NULL
);

-- The lake's schema version (and room for other facts about it).
CREATE TABLE IF NOT EXISTS lake.tickvault_meta (
    key   VARCHAR NOT NULL,
    value VARCHAR NOT NULL
);

-- The (venue, symbol) pairs that should trade on a date (the day's NXT universe is data).
CREATE TABLE IF NOT EXISTS lake.universe (
    day        DATE        NOT NULL,
    venue      VARCHAR     NOT NULL,
    symbol     VARCHAR     NOT NULL,
    source     VARCHAR     NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
)

-- name: tables_exist
SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' AND table_name IN ('ticks', 'ingest_checkpoint')

-- name: lake_tables
SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'

-- name: schema_version
SELECT max(CAST(value AS INTEGER)) FROM lake.tickvault_meta WHERE key = 'schema_version'

-- name: ticks_columns
SELECT * FROM lake.ticks LIMIT 0

-- name: set_schema_version
DELETE FROM lake.tickvault_meta WHERE key = 'schema_version';
INSERT INTO lake.tickvault_meta VALUES ('schema_version', :version)

-- name: migrate_v2
-- Schema 1 -> 2 (venue in the natural key), one transaction. Rows stored under Kiwoom's `_NX`
-- code become venue NXT with the plain code; the lake keeps its snapshots, so the state before
-- the upgrade stays readable with as_of.
ALTER TABLE lake.ticks ADD COLUMN venue VARCHAR DEFAULT 'KRX';
UPDATE lake.ticks SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX' ESCAPE '\';
CREATE TABLE IF NOT EXISTS lake.tickvault_meta (key VARCHAR NOT NULL, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS lake.universe (
    day DATE NOT NULL, venue VARCHAR NOT NULL, symbol VARCHAR NOT NULL, source VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL
)

-- name: migrate_integrity_v2
-- Schema 1 -> 2 of the integrity report (when the table exists).
ALTER TABLE lake.integrity_report ADD COLUMN venue VARCHAR DEFAULT 'KRX';
UPDATE lake.integrity_report SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX' ESCAPE '\'



-- name: layout
-- Physical layout: one partition per KST trading date, files sorted so one symbol's
-- trades on one venue are contiguous and in trade order, zstd-compressed Parquet. Tick data
-- is never inlined in the catalog (every tick lives in a plain Parquet file); the tiny
-- checkpoint table is inlined so a commit does not leave a Parquet file per batch.
ALTER TABLE lake.ticks SET PARTITIONED BY (trade_date);
ALTER TABLE lake.ticks SET SORTED BY (symbol, venue, cum_volume);
CALL lake.set_option('parquet_compression', 'zstd');
CALL lake.set_option('data_inlining_row_limit', 0, table_name => 'ticks');
CALL lake.set_option('data_inlining_row_limit', 100, table_name => 'ingest_checkpoint');

-- name: layout_done
-- True once layout.sql ran to its end (its last statement sets this option).
SELECT count(*) > 0 FROM ducklake_options('lake')
WHERE option_name = 'data_inlining_row_limit' AND scope_entry = 'main.ingest_checkpoint'
