#!/bin/sh
# Runs once, when the primary's data directory is created (docker-entrypoint-initdb.d): lets the
# streaming replica of docker-compose.scale.yml connect for replication with a password.
set -eu
echo "host replication postgres all scram-sha-256" >> "$PGDATA/pg_hba.conf"
