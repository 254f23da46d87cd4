-- name: grant_roles
-- Least-privilege roles for one installation (schema {schema}); run by `tickvault init --roles`
-- as the schema's owner. Idempotent. Nothing here makes either role able to run DDL:
--   writer: read and change rows (archivers, reconcile, recovery, metrics), no CREATE, no DROP;
--   reader: SELECT only, read-only transactions by default (Grafana, notebooks).
-- Tables and candle views created later by the owner inherit the same grants (default privileges).
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

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {writer};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {writer};
GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader};

ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {writer};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader};

-- Grafana's and notebooks' queries name tables without the schema.
ALTER ROLE {reader} SET search_path = {schema}, public;
ALTER ROLE {reader} SET default_transaction_read_only = on;
ALTER ROLE {writer} SET search_path = {schema}, public;

-- name: set_password
ALTER ROLE {role} PASSWORD {password}
