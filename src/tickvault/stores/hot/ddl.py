"""DDL that must also work for the least-privileged writer role.

`CREATE TABLE IF NOT EXISTS` checks the CREATE privilege before it checks existence, so a
writer role without DDL rights gets "permission denied" even when the table is there.
Look first, create only when missing (`tickvault init`, run as the owner, creates them).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql


def ensure_table(conn: Any, schema: str, name: str, create: sql.Composable) -> None:
    """Run ``create`` only when ``schema.name`` does not exist yet."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{name}"',)).fetchone()[0]
    if not exists:
        conn.execute(create)
