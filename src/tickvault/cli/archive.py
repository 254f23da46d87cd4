"""`tickvault init` and `tickvault archive hot|cold|all`."""

from __future__ import annotations

import logging
import sys
import threading

import click

from ..services.archiver import Archiver, build_archiver, install_signal_handlers
from . import get_settings

log = logging.getLogger(__name__)


@click.command("init")
@click.option("--hot/--no-hot", default=True, help="Create/upgrade the hot store schema.")
@click.option("--cold/--no-cold", default=True, help="Create the lake catalog and tables.")
@click.option("--roles", is_flag=True, help="Also create the writer and read-only reader roles (TICKVAULT_PG_WRITER_ROLE/READER_ROLE).")
@click.pass_context
def init_cmd(ctx: click.Context, hot: bool, cold: bool, roles: bool) -> None:
    """Create or upgrade the hot schema and the lake; safe to re-run."""
    settings = get_settings(ctx)
    if hot or roles:
        from ..stores.hot import HotStore

        with HotStore(settings) as store:
            if hot:
                store.init()  # report tables too, so the writer role never needs DDL
                version = f" {store.extension_version}" if store.extension_version else ""
                click.echo(f"hot store ready: schema {settings.pg_schema}, mode {store.mode}{version}")
            if roles:
                from ..stores.hot.roles import create_roles

                made = create_roles(store)
                click.echo(f"roles ready: writer {made.writer}, reader {made.reader} (schema {made.schema})")
    if cold:
        from ..stores.lake import Lake

        lake = Lake(settings)
        lake.init()
        click.echo(f"lake ready: {settings.lake_dir}")
        lake.close()


@click.command("archive")
@click.argument("which", type=click.Choice(["hot", "cold", "all"]))
@click.option("--consumer", help="Consumer name inside the group (default: <group>-<hostname>); keep it stable across restarts.")
@click.option(
    "--sync/--no-sync",
    default=None,
    help="Also run the reconciler and safe trimming on their schedules (default: on for `all`, off for one group).",
)
@click.pass_context
def archive_cmd(ctx: click.Context, which: str, consumer: str | None, sync: bool | None) -> None:
    """Consume the stream into the hot store, the lake, or both, until SIGTERM/SIGINT.

    Each batch is written durably, then acked; a store outage means retry with backoff,
    never a dropped batch. On SIGTERM the batch in hand is finished and acked.
    """
    settings = get_settings(ctx)
    groups = ["hot", "cold"] if which == "all" else [which]
    archivers = [build_archiver(settings, g, consumer and f"{consumer}-{g}" if which == "all" else consumer) for g in groups]
    scheduler = None
    if sync if sync is not None else which == "all":
        from ..services.sync.scheduler import SyncScheduler

        scheduler = SyncScheduler(settings)
        scheduler.start()
    install_signal_handlers(lambda: [a.stop() for a in archivers])
    codes: dict[str, int] = {}

    def run(a: Archiver) -> None:
        try:
            codes[a.store.name] = a.run()
        except Exception:
            log.exception("archiver %s crashed", a.store.name)
            codes[a.store.name] = 1
            for other in archivers:
                other.stop()

    threads = [threading.Thread(target=run, args=(a,), name=f"archive-{a.store.name}") for a in archivers]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.5)
    if scheduler is not None:
        scheduler.stop()
    for a in archivers:
        a.store.close()
    sys.exit(max(codes.values(), default=0))
