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
from datetime import date
from pathlib import Path
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
    "lake-sql": "sql:lake_sql_cmd",
    "sql": "sql:sql_cmd",
    "symbols": "discover:symbols_cmd",
    "coverage": "discover:coverage_cmd",
    "snapshots": "discover:snapshots_cmd",
    "adjustments": "adjust:adjustments_group",
    "report": "report:report_cmd",
    "demo": "demo:demo_cmd",
    "run": "run:run_cmd",
    "health": "run:health_cmd",
    "maintain": "run:maintain_cmd",
    "recover": "recover:recover_cmd",
}


#: options of the `tickvault` group itself, accepted anywhere on the command line (value follows)
GLOBAL_OPTIONS = ("--config", "--log-level")


def hoist_global_options(args: list[str]) -> list[str]:
    """``tickvault status --config x.toml`` -> ``tickvault --config x.toml status``: the group's own
    options are accepted after the subcommand too (up to a ``--``)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            if "=" in arg or i + 1 == len(args):
                front.append(arg)
                i += 1
            else:
                front.extend(args[i:i + 2])
                i += 2
            continue
        rest.append(arg)
        i += 1
    return front + rest


def one_line(exc: BaseException) -> str:
    """The line for an error tickvault did not raise on purpose: what failed and what to do next."""
    if isinstance(exc, OSError) and exc.filename is not None:
        where = Path(str(exc.filename))
        if isinstance(exc, FileNotFoundError) and not where.parent.exists():
            return f"{where}: directory {where.parent} does not exist; create it or choose another path"
        return f"{where}: {exc.strerror or exc}; check the path and its permissions"
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"unexpected {type(exc).__name__}{detail}; rerun with --log-level debug for the traceback and report it"


class LazyGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: click.Context) -> object:
        """Every error becomes one line on stderr that says what to do next (a traceback only with
        ``--log-level debug``); usage errors stay click's."""
        from ..core.errors import TickvaultError

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except TickvaultError as exc:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            fail(str(exc))
        except Exception as exc:  # the last resort: one line instead of a traceback
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            fail(one_line(exc))

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


def parse_day_text(value: str) -> date:
    """A KST date as people type it (YYYY-MM-DD, YYYYMMDD, today, yesterday, -3d); a usage error otherwise."""
    from ..core.dates import parse_day
    from ..core.errors import QueryError

    try:
        return parse_day(value, name="--date")
    except QueryError as exc:
        raise click.BadParameter(str(exc).removeprefix("--date: ")) from None


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr that says what went wrong and what to do, then exit non-zero."""
    click.echo(f"tickvault: {message}", err=True)
    sys.exit(code)


def main() -> None:
    """The console script: click's usage errors also become one line (with where to find help)."""
    try:
        result = cli.main(prog_name="tickvault", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        fail(f"{exc.format_message()}{where}", exc.exit_code)
    except click.Abort:
        fail("aborted", 130)
    sys.exit(result if isinstance(result, int) else 0)
