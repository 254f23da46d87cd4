-- TimescaleDB mode: the same ticks columns as PostgreSQL mode, as a hypertable with 1-day
-- chunks (chunk boundaries at 00:00 UTC = 09:00 KST, the open), plus the metrics hypertable.
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
);
SELECT create_hypertable({ticks}, by_range('ts', INTERVAL '1 day'), if_not_exists => true);

CREATE TABLE IF NOT EXISTS {schema}.metrics (
    ts     timestamptz      NOT NULL,
    name   text             NOT NULL,
    labels jsonb            NOT NULL DEFAULT '{{}}',
    value  double precision NOT NULL
);
SELECT create_hypertable({metrics}, by_range('ts', INTERVAL '1 day'), if_not_exists => true);
CREATE INDEX IF NOT EXISTS metrics_name_ts ON {schema}.metrics (name, ts DESC);
