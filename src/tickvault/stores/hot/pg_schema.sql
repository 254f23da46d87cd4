-- PostgreSQL mode: ticks range-partitioned by KST day (partitions made on demand by
-- partitions.py, no default partition so a missing partition can never hide rows),
-- candles as plain tables maintained by pg_write.sql from the rows each insert added.
CREATE TABLE IF NOT EXISTS {schema}.ticks (
    symbol      text          NOT NULL,
    ts          timestamptz   NOT NULL,
    price       numeric(18,4) NOT NULL,
    volume      bigint        NOT NULL,
    cum_volume  bigint        NOT NULL,
    side        text,
    source      text          NOT NULL,
    received_at timestamptz,
    CONSTRAINT ticks_natural_key UNIQUE (symbol, ts, cum_volume)
) PARTITION BY RANGE (ts);

CREATE TABLE IF NOT EXISTS {schema}.candles_1m (
    bucket      timestamptz   NOT NULL,
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
    PRIMARY KEY (symbol, bucket)
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
CREATE INDEX IF NOT EXISTS metrics_name_ts ON {schema}.metrics (name, ts DESC);
