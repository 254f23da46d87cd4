-- The hot store's tables, in both modes. Every block is idempotent: `tickvault init` and the
-- archivers' start run them again at will. {schema} is this installation's schema.

-- name: lock_init
-- Serialise concurrent inits of one schema (two archivers starting at once).
SELECT pg_advisory_xact_lock(hashtext('tickvault.init.' || :schema))

-- name: relation_exists
SELECT to_regclass(:relation) IS NOT NULL

-- name: extension_info
-- installed: version in this database; available: whether the server could install it.
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed,
       (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS available

-- name: create_extension
CREATE EXTENSION IF NOT EXISTS timescaledb

-- name: get_meta
SELECT value FROM {schema}.hot_meta WHERE key = :key

-- name: set_meta
INSERT INTO {schema}.hot_meta (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value

-- name: common_tables
CREATE SCHEMA IF NOT EXISTS {schema};

-- Which mode this schema was created in; a schema never silently switches mode.
CREATE TABLE IF NOT EXISTS {schema}.hot_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The highest stream id whose batch this store committed, per (stream, consumer group),
-- written in the data's transaction (an audit marker for status and rebuild).
CREATE TABLE IF NOT EXISTS {schema}.ingest_checkpoint (
    stream     text        NOT NULL,
    grp        text        NOT NULL,
    last_id    text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, grp)
)

-- name: candle_delta_table
-- PostgreSQL mode with hot_candle_fold_ms > 0: each write appends the 1m candle delta of the
-- rows it really added (no index: appends are cheap); HotStore.fold_candles consumes the rows
-- (DELETE ... RETURNING) and merges them into candles_1m -> 1d, each row exactly once.
CREATE TABLE IF NOT EXISTS {schema}.candle_delta (
    venue       text          NOT NULL,
    symbol      text          NOT NULL,
    bucket      timestamptz   NOT NULL,
    open        numeric(18,4) NOT NULL,
    high        numeric(18,4) NOT NULL,
    low         numeric(18,4) NOT NULL,
    close       numeric(18,4) NOT NULL,
    volume      bigint        NOT NULL,
    trade_count bigint        NOT NULL,
    turnover    numeric       NOT NULL,
    open_cum    bigint        NOT NULL,
    close_cum   bigint        NOT NULL
)

-- name: postgres_tables
-- PostgreSQL mode: ticks range-partitioned by KST day (partitions made on demand by
-- partitions.py, no default partition so a missing partition can never hide rows),
-- candles as plain tables maintained by write.sql's insert_postgres from the rows each
-- insert really added.
CREATE TABLE IF NOT EXISTS {schema}.ticks (
    venue       text          NOT NULL DEFAULT 'KRX',
    symbol      text          NOT NULL,
    ts          timestamptz   NOT NULL,
    price       numeric(18,4) NOT NULL,
    volume      bigint        NOT NULL,
    cum_volume  bigint        NOT NULL,
    side        text,
    source      text          NOT NULL,
    received_at timestamptz,
    CONSTRAINT ticks_natural_key UNIQUE (venue, symbol, ts, cum_volume)
) PARTITION BY RANGE (ts);

CREATE TABLE IF NOT EXISTS {schema}.candles_1m (
    bucket      timestamptz   NOT NULL,
    venue       text          NOT NULL DEFAULT 'KRX',
    symbol      text          NOT NULL,
    open        numeric(18,4) NOT NULL,
    high        numeric(18,4) NOT NULL,
    low         numeric(18,4) NOT NULL,
    close       numeric(18,4) NOT NULL,
    volume      bigint        NOT NULL,
    trade_count bigint        NOT NULL,
    turnover    numeric       NOT NULL,
    vwap        numeric(18,4) NOT NULL,
    open_cum    bigint        NOT NULL,
    close_cum   bigint        NOT NULL,
    PRIMARY KEY (venue, symbol, bucket)
);
CREATE TABLE IF NOT EXISTS {schema}.candles_5m (LIKE {schema}.candles_1m INCLUDING ALL);
CREATE TABLE IF NOT EXISTS {schema}.candles_1h (LIKE {schema}.candles_1m INCLUDING ALL);
CREATE TABLE IF NOT EXISTS {schema}.candles_1d (LIKE {schema}.candles_1m INCLUDING ALL);
CREATE INDEX IF NOT EXISTS candles_1m_bucket ON {schema}.candles_1m (bucket);
CREATE INDEX IF NOT EXISTS candles_5m_bucket ON {schema}.candles_5m (bucket);
CREATE INDEX IF NOT EXISTS candles_1h_bucket ON {schema}.candles_1h (bucket);
CREATE INDEX IF NOT EXISTS candles_1d_bucket ON {schema}.candles_1d (bucket);

CREATE TABLE IF NOT EXISTS {schema}.metrics (
    ts     timestamptz      NOT NULL,
    name   text             NOT NULL,
    labels jsonb            NOT NULL DEFAULT '{{}}',
    value  double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_ts ON {schema}.metrics (ts);
CREATE INDEX IF NOT EXISTS metrics_name_ts ON {schema}.metrics (name, ts DESC)

-- name: timescale_tables
-- TimescaleDB mode: the same ticks columns as PostgreSQL mode, as a hypertable with 1-day
-- chunks (chunk boundaries at 00:00 UTC = 09:00 KST, the open), plus the metrics hypertable.
-- Candles are continuous aggregates (timescale.sql).
CREATE TABLE IF NOT EXISTS {schema}.ticks (
    venue       text          NOT NULL DEFAULT 'KRX',
    symbol      text          NOT NULL,
    ts          timestamptz   NOT NULL,
    price       numeric(18,4) NOT NULL,
    volume      bigint        NOT NULL,
    cum_volume  bigint        NOT NULL,
    side        text,
    source      text          NOT NULL,
    received_at timestamptz,
    CONSTRAINT ticks_natural_key UNIQUE (venue, symbol, ts, cum_volume)
);
SELECT create_hypertable({ticks_name}, by_range('ts', INTERVAL '1 day'), if_not_exists => true);

CREATE TABLE IF NOT EXISTS {schema}.metrics (
    ts     timestamptz      NOT NULL,
    name   text             NOT NULL,
    labels jsonb            NOT NULL DEFAULT '{{}}',
    value  double precision NOT NULL
);
SELECT create_hypertable({metrics_name}, by_range('ts', INTERVAL '1 day'), if_not_exists => true);
CREATE INDEX IF NOT EXISTS metrics_name_ts ON {schema}.metrics (name, ts DESC)

-- name: integrity_report_table
-- One row per (date, venue, symbol), rewritten by every reconcile: the basis of the daily report.
CREATE TABLE IF NOT EXISTS {schema}.integrity_report (
    day            date        NOT NULL,
    venue          text        NOT NULL DEFAULT 'KRX',
    symbol         text        NOT NULL,
    ticks          bigint      NOT NULL,
    volume         bigint      NOT NULL,
    gaps           integer     NOT NULL,
    missing_volume bigint      NOT NULL,
    duplicates     bigint      NOT NULL,
    repaired_hot   bigint      NOT NULL,
    repaired_cold  bigint      NOT NULL,
    status         text        NOT NULL,
    checked_at     timestamptz NOT NULL,
    PRIMARY KEY (day, venue, symbol)
)

-- name: recovery_report_table
-- One row per (date, broker, venue, symbol): the latest recovery run's verdict.
CREATE TABLE IF NOT EXISTS {schema}.recovery_report (
    day                 date        NOT NULL,
    broker              text        NOT NULL,
    venue               text        NOT NULL DEFAULT 'KRX',
    symbol              text        NOT NULL,
    status              text        NOT NULL,
    complete            boolean     NOT NULL,
    ticks_before        bigint      NOT NULL,
    ticks_after         bigint      NOT NULL,
    gaps_found          integer     NOT NULL,
    ticks_recovered     bigint      NOT NULL,
    volume_recovered    bigint      NOT NULL,
    minutes_disagreeing integer     NOT NULL,
    detail              jsonb       NOT NULL,
    ran_at              timestamptz NOT NULL,
    PRIMARY KEY (day, broker, venue, symbol)
)

-- name: universe_table
-- The (venue, symbol) pairs that should trade on a date (the day's NXT universe is data: it
-- changes quarterly and at short notice). verify and recovery prove completeness against it.
CREATE TABLE IF NOT EXISTS {schema}.universe (
    day        date        NOT NULL,
    venue      text        NOT NULL,
    symbol     text        NOT NULL,
    source     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, venue, symbol)
)

-- name: migrate_postgres_v2
-- Schema 1 -> 2 (venue in the natural key), PostgreSQL mode, in the caller's transaction. Rows
-- stored under Kiwoom's `_NX` code become venue NXT with the plain code. The old key goes first:
-- an NXT row renamed to its plain code may share (symbol, ts, cum_volume) with a KRX row.
ALTER TABLE {schema}.ticks ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.ticks DROP CONSTRAINT IF EXISTS ticks_natural_key;
UPDATE {schema}.ticks SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.ticks ADD CONSTRAINT ticks_natural_key UNIQUE (venue, symbol, ts, cum_volume);
ALTER TABLE {schema}.candles_1m ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.candles_1m DROP CONSTRAINT IF EXISTS candles_1m_pkey;
UPDATE {schema}.candles_1m SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.candles_1m ADD PRIMARY KEY (venue, symbol, bucket);
ALTER TABLE {schema}.candles_5m ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.candles_5m DROP CONSTRAINT IF EXISTS candles_5m_pkey;
UPDATE {schema}.candles_5m SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.candles_5m ADD PRIMARY KEY (venue, symbol, bucket);
ALTER TABLE {schema}.candles_1h ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.candles_1h DROP CONSTRAINT IF EXISTS candles_1h_pkey;
UPDATE {schema}.candles_1h SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.candles_1h ADD PRIMARY KEY (venue, symbol, bucket);
ALTER TABLE {schema}.candles_1d ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.candles_1d DROP CONSTRAINT IF EXISTS candles_1d_pkey;
UPDATE {schema}.candles_1d SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.candles_1d ADD PRIMARY KEY (venue, symbol, bucket)

-- name: migrate_reports_v2
-- Schema 1 -> 2 of the report tables (both modes).
ALTER TABLE {schema}.integrity_report ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.integrity_report DROP CONSTRAINT IF EXISTS integrity_report_pkey;
UPDATE {schema}.integrity_report SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.integrity_report ADD PRIMARY KEY (day, venue, symbol);
ALTER TABLE {schema}.recovery_report ADD COLUMN IF NOT EXISTS venue text NOT NULL DEFAULT 'KRX';
ALTER TABLE {schema}.recovery_report DROP CONSTRAINT IF EXISTS recovery_report_pkey;
UPDATE {schema}.recovery_report SET venue = 'NXT', symbol = left(symbol, 6) WHERE symbol LIKE '______\_NX';
ALTER TABLE {schema}.recovery_report ADD PRIMARY KEY (day, broker, venue, symbol)
