-- name: grant_roles
-- Least-privilege roles for one installation (schema {schema}); run by `tickvault init --roles`
-- as the schema's owner. Idempotent, and it narrows the grants of an older installation. Nothing
-- here makes either role able to run DDL:
--   writer: what the archivers, reconcile, recovery and the metrics sampler do — read every
--           table, add ticks (never change or delete one), upsert candles, checkpoints and the
--           reports, replace a day's universe, append metrics; hot_meta (mode, schema version)
--           is read-only. Retention (deleting old rows, dropping partitions) is the owner's
--           `tickvault maintain`;
--   reader: SELECT only, read-only transactions by default (Grafana, notebooks).
-- Tables created later by the owner (upgrades, tick partitions) get SELECT for both and INSERT
-- for the writer (default privileges); `tickvault init --roles` after an upgrade refines them.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {writer_name}) THEN
        CREATE ROLE {writer} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {reader_name}) THEN
        CREATE ROLE {reader} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA {schema} TO {writer}, {reader};

REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {writer};
GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {writer}, {reader};
-- Row rights per table (those that exist: a schema init has not filled yet gets none).
-- PostgreSQL mode keeps candles as tables the tick insert upserts (or, deferred, candle_delta
-- logs and a fold by any archiver merges); TimescaleDB's are views.
DO $rows$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT c.oid::regclass AS relation, wanted.privileges
        FROM (VALUES ('ticks', 'INSERT'), ('metrics', 'INSERT'),
                     ('ingest_checkpoint', 'INSERT, UPDATE'), ('integrity_report', 'INSERT, UPDATE'),
                     ('recovery_report', 'INSERT, UPDATE'), ('universe', 'INSERT, DELETE'),
                     ('candles_1m', 'INSERT, UPDATE'), ('candles_5m', 'INSERT, UPDATE'),
                     ('candles_1h', 'INSERT, UPDATE'), ('candles_1d', 'INSERT, UPDATE'),
                     ('candle_delta', 'INSERT, DELETE')) AS wanted (relname, privileges)
        JOIN pg_class c ON c.relname = wanted.relname
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = {schema_name}) AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('GRANT %s ON %s TO %I', target.privileges, target.relation, {writer_name});
    END LOOP;
    IF to_regprocedure(format('%I.tickvault_create_partition(date, timestamptz, timestamptz)', {schema_name})) IS NOT NULL THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %I.tickvault_create_partition(date, timestamptz, timestamptz) TO %I',
                       {schema_name}, {writer_name});
    END IF;
END
$rows$;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {writer};

ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE UPDATE, DELETE ON TABLES FROM {writer};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT ON TABLES TO {writer};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {writer};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader};

-- Grafana's and notebooks' queries name tables without the schema.
ALTER ROLE {reader} SET search_path = {schema}, public;
ALTER ROLE {reader} SET default_transaction_read_only = on;
ALTER ROLE {writer} SET search_path = {schema}, public;

-- name: set_password
ALTER ROLE {role} PASSWORD {password}
