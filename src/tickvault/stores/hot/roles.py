"""Create the writer and reader roles of one installation (`tickvault init --roles`).

Runs as the schema's owner (the role that ran `tickvault init`). The owner keeps DDL and
retention: `tickvault maintain` (dropping partitions, deleting old candles and metrics) runs
as the owner (docs/operations.md). The writer gets only what its paths use (sql/roles.sql):
no DELETE or UPDATE of ticks, hot_meta read-only; in PostgreSQL mode it creates a missing
day's partition through the owner's ``tickvault_create_partition`` function, in TimescaleDB
mode its inserts create chunks by themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from ...core.errors import ConfigError
from .store import HotStore

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class RolesResult:
    schema: str
    writer: str
    reader: str
    writer_password_set: bool
    reader_password_set: bool


def _check_name(name: str, setting: str) -> str:
    if not _ROLE_NAME.match(name):
        raise ConfigError(f"{setting}={name!r} is not a plain lowercase role name (letters, digits, _); change TICKVAULT_{setting.upper()}")
    return name


def create_roles(store: HotStore) -> RolesResult:
    """Create (or refresh the grants of) the writer and reader roles; idempotent.

    Passwords are hashed on this side (SCRAM-SHA-256 by libpq, as psql's password command does), so
    the plaintext never travels to the server or lands in its logs."""
    settings = store.settings
    writer = _check_name(settings.pg_writer_role, "pg_writer_role")
    reader = _check_name(settings.pg_reader_role, "pg_reader_role")
    if writer == reader:
        raise ConfigError("pg_writer_role and pg_reader_role must differ: the reader must not be able to write")
    grants = store.sql(
        "roles", "grant_roles",
        writer=sql.Identifier(writer),
        reader=sql.Identifier(reader),
        writer_name=sql.Literal(writer),
        reader_name=sql.Literal(reader),
        schema_name=sql.Literal(store.schema),
    )
    passwords = {writer: settings.pg_writer_password, reader: settings.pg_reader_password}
    with store.connection() as conn, conn.transaction():
        conn.execute(grants)
        for role, secret in passwords.items():
            if secret is not None:
                hashed = conn.pgconn.encrypt_password(secret.get_secret_value().encode(), role.encode(), b"scram-sha-256")
                conn.execute(store.sql("roles", "set_password", role=sql.Identifier(role), password=sql.Literal(hashed.decode())))
    return RolesResult(settings.pg_schema, writer, reader, passwords[writer] is not None, passwords[reader] is not None)
