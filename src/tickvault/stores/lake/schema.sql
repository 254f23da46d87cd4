-- The lake's tables, created idempotently by Lake.init().
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
