"""The `tickvault` command. Each subcommand lives in its own module, loaded on first use
so `tickvault --help` stays fast and one area's imports never slow another's.

Conventions for every subcommand: `--json` where it reports; dates `YYYY-MM-DD` (KST
trading dates); exit 0 = success/consistent, non-zero with a one-line reason on stderr
that says what to do next; no secrets printed.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import NoReturn

import click

from ..core.config import Settings, load_settings

#: command name -> "module:attribute" (relative to tickvault.cli)
COMMANDS: dict[str, str] = {
    "init": "archive:init_cmd",
    "archive": "archive:archive_cmd",
    "collect": "collect:collect_cmd",
    "compact": "lake:compact_cmd",
    "lake": "lake:lake_group",
    "simulate": "simulate:simulate_cmd",
    "verify": "sync:verify_cmd",
    "reconcile": "sync:reconcile_cmd",
    "trim": "sync:trim_cmd",
    "rebuild": "sync:rebuild_cmd",
    "export": "export:export_cmd",
    "status": "status:status_cmd",
    "candles": "query:candles_cmd",
    "ticks": "query:ticks_cmd",
    "lake-sql": "query:lake_sql_cmd",
    "demo": "demo:demo_cmd",
    "run": "run:run_cmd",
    "health": "run:health_cmd",
    "maintain": "run:maintain_cmd",
    "recover": "recover:recover_cmd",
}


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        """Every error tickvault raises on purpose becomes one line on stderr (no traceback)."""
        from ..core.errors import TickvaultError

        try:
            return super().invoke(ctx)
        except TickvaultError as exc:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            fail(str(exc))
            return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="TICKVAULT_CONFIG",
              help="TOML settings file (environment variables override it).")
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.version_option(package_name="tickvault")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, log_level: str) -> None:
    """tickvault archives Korean stock-market ticks with zero loss: a Redis stream
    lands exactly once in a hot PostgreSQL/TimescaleDB store and a cold Parquet lake."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # the pool logs every failed connection attempt; the store reports an outage in one line itself
    logging.getLogger("psycopg.pool").setLevel(max(logging.ERROR, logging.getLogger().level))
    ctx.obj = {"config_file": config_file}


def get_settings(ctx: click.Context) -> Settings:
    """Settings for this invocation, loaded once; a bad setting is a usage error, not a traceback."""
    root = ctx.find_root()
    cached = root.obj.get("settings")
    if cached is None:
        try:
            cached = load_settings(root.obj.get("config_file"))
        except (ValueError, OSError) as exc:  # ConfigError (a bad value), a missing or readable secrets file
            fail(f"bad configuration: {exc}", 2)
        root.obj["settings"] = cached
    return cached


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr that says what went wrong and what to do, then exit non-zero."""
    click.echo(f"tickvault: {message}", err=True)
    sys.exit(code)


def main() -> None:
    cli(prog_name="tickvault")
