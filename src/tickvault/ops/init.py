"""`tickvault init`: create or upgrade everything an installation needs, idempotently.

The report tables are created here too (not on first use), so the writer role that
`tickvault run` uses never needs DDL rights.
"""

from __future__ import annotations

from ..core.config import Settings
from ..services.recovery.report import create_hot_table as create_recovery_report
from ..services.sync.integrity import create_hot_table as create_integrity_report
from ..stores.hot import HotStore
from ..stores.hot.roles import create_roles
from ..stores.lake import Lake


def initialize(settings: Settings, *, hot: bool = True, cold: bool = True, roles: bool = False) -> list[str]:
    """Create/upgrade the hot schema (with the report tables), the roles and the lake; one line per part done."""
    done: list[str] = []
    if hot:
        store = HotStore(settings)
        try:
            store.init()
            with store.connect() as conn:
                create_integrity_report(conn, settings.pg_schema)
                create_recovery_report(conn, settings.pg_schema)
            version = f" {store.extension_version}" if store.extension_version else ""
            done.append(f"hot store ready: schema {settings.pg_schema}, mode {store.mode}{version}")
        finally:
            store.close()
    if roles:
        made = create_roles(settings)
        done.append(f"roles ready: writer {made.writer}, reader {made.reader} (schema {made.schema})")
    if cold:
        lake = Lake(settings)
        try:
            lake.init()
        finally:
            lake.close()
        done.append(f"lake ready: {settings.lake_dir}")
    return done
