"""`tickvault init` and `tickvault archive hot|cold|all`."""

from __future__ import annotations

import sys

import click

from . import get_settings
from .progress import progress


@click.command("init")
@click.option("--hot/--no-hot", default=True, help="Create/upgrade the hot store schema.")
@click.option("--cold/--no-cold", default=True, help="Create the lake catalog and tables.")
@click.option("--roles", is_flag=True, help="Also create the writer and read-only reader roles (TICKVAULT_PG_WRITER_ROLE/READER_ROLE).")
@click.pass_context
def init_cmd(ctx: click.Context, hot: bool, cold: bool, roles: bool) -> None:
    """Create or upgrade the hot schema and the lake; safe to re-run."""
    from ..ops.init import initialize

    with progress("init", "parts") as on_progress:
        lines = initialize(get_settings(ctx), hot=hot, cold=cold, roles=roles, on_progress=on_progress)
    for line in lines:
        click.echo(line)


@click.command("archive")
@click.argument("which", type=click.Choice(["hot", "cold", "all"]))
@click.option("--consumer", help="Consumer name inside the group (default: <group>-<hostname>); keep it stable across restarts.")
@click.option(
    "--sync/--no-sync",
    default=None,
    help="Also run the reconciler and safe trimming on their schedules (default: on for `all`, off for one group); "
    "with the hot group, hot maintenance runs hourly either way.",
)
@click.pass_context
def archive_cmd(ctx: click.Context, which: str, consumer: str | None, sync: bool | None) -> None:
    """Consume the stream into the hot store, the lake, or both, until SIGTERM/SIGINT.

    Each batch is written durably, then acked; a store outage means retry with backoff,
    never a dropped batch. On SIGTERM the batch in hand is finished and acked.
    """
    from ..ops.run import archive

    groups = ("hot", "cold") if which == "all" else (which,)
    with_sync = sync if sync is not None else which == "all"
    sys.exit(archive(get_settings(ctx), groups, consumer, with_sync))
