-- Tables both modes share. Idempotent: run by every `tickvault init` and archiver start.
CREATE SCHEMA IF NOT EXISTS {schema};

-- Which mode this schema was created in; a schema never silently switches mode.
CREATE TABLE IF NOT EXISTS {schema}.hot_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Highest stream id committed per (stream, consumer group), written in the data's transaction.
CREATE TABLE IF NOT EXISTS {schema}.ingest_checkpoint (
    stream     text        NOT NULL,
    grp        text        NOT NULL,
    last_id    text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, grp)
);
