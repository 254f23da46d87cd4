#!/bin/sh
# The hot store's streaming replica: on first start copy the primary with pg_basebackup (-R writes
# the standby settings, -C -S a replication slot), then run PostgreSQL as a hot standby. Reads only;
# promote it with `pg_ctl promote` (docs/scale-out.md says which settings follow).
set -eu
export PGPASSWORD="$POSTGRES_PASSWORD"
until pg_isready -h timescaledb -U postgres >/dev/null 2>&1; do sleep 1; done
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pg_basebackup -h timescaledb -U postgres -D "$PGDATA" -R -X stream -C -S tickvault_replica --checkpoint=fast
  chmod 700 "$PGDATA"
fi
exec docker-entrypoint.sh postgres -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off -c hot_standby=on
