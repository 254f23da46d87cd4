"""`tickvault init`: create or upgrade everything an installation needs, idempotently.

The report tables are created here too (not on first use), so the writer role that
`tickvault run` uses never needs DDL rights.
"""

from __future__ import annotations

from ..core.config import Settings
from ..core.progress import ProgressFn, report
from ..stores.hot import HotStore
from ..stores.hot.roles import create_roles
from ..stores.lake import Lake


def initialize(settings: Settings, *, hot: bool = True, cold: bool = True, roles: bool = False,
               on_progress: ProgressFn | None = None) -> list[str]:
    """Create/upgrade the hot schema (with the report tables), the roles and the lake (an in-place
    upgrade of an older lake included); one line per part done, ``on_progress(parts done, parts)``."""
    done: list[str] = []
    parts = int(hot) + int(roles) + int(cold)
    report(on_progress, 0, parts)
    if hot or roles:
        with HotStore(settings) as store:
            if hot:
                store.init()
                version = f" {store.extension_version}" if store.extension_version else ""
                done.append(f"hot store ready: schema {settings.pg_schema}, mode {store.mode}{version}")
                report(on_progress, len(done), parts)
            if roles:
                made = create_roles(store)
                done.append(f"roles ready: writer {made.writer}, reader {made.reader} (schema {made.schema})")
                report(on_progress, len(done), parts)
    if cold:
        lake = Lake(settings)
        try:
            lake.init()
        finally:
            lake.close()
        done.append(f"lake ready: {settings.lake_dir}")
        report(on_progress, len(done), parts)
    return done
