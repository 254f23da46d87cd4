-- The metrics table, same definition as the hot store's init (hot/pg_schema.sql). Only used
-- when the sampler finds no table (a schema initialised by an older tickvault); init owns it.
CREATE TABLE IF NOT EXISTS {schema}.metrics (
    ts     timestamptz      NOT NULL,
    name   text             NOT NULL,
    labels jsonb            NOT NULL DEFAULT '{{}}',
    value  double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_ts ON {schema}.metrics (ts);
CREATE INDEX IF NOT EXISTS metrics_name_ts ON {schema}.metrics (name, ts DESC);
