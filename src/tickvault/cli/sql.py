"""`tickvault sql`: run SQL on the lake (or, read-only, the hot store) without leaving tickvault."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType

import click
import pyarrow as pa

from ..core.config import Settings
from ..core.errors import QueryError, TickvaultError
from ..core.wire import KST
from . import fail, get_settings
from .query import check_out, common_output, emit

PROMPT, MORE = "tickvault> ", "      ...> "
HISTORY = Path.home() / ".cache" / "tickvault" / "sql_history"


def _years(first_year: int | None, last_year: int | None) -> tuple[int, int]:
    return first_year or 2015, last_year or datetime.now(KST).year + 1


def read_statements(prompt: Callable[[str], str]) -> Iterator[str]:
    """Statements typed at the prompt, each complete at a line ending in ';' (until EOF, .quit or \\q)."""
    lines: list[str] = []
    while True:
        try:
            line = prompt(MORE if lines else PROMPT)
        except EOFError:
            break
        if not lines and line.strip() in (".quit", ".exit", "\\q"):
            break
        if not lines and not line.strip():
            continue
        lines.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(lines)
            lines = []
    if lines:
        yield "\n".join(lines)


def interactive(ask: Callable[[str], pa.Table], prompt: Callable[[str], str] = input) -> None:
    """A prompt with history (readline) and multi-line statements; a mistake is reported, not fatal."""
    history: ModuleType | None
    try:
        import readline

        history = readline
        HISTORY.parent.mkdir(parents=True, exist_ok=True)
        if HISTORY.exists():
            readline.read_history_file(HISTORY)
    except (ImportError, OSError):
        history = None
    click.echo("tickvault sql: views ticks, candles(tf, first_day, last_day, symbols := [...]), tv_calendar; end a statement with ';', "
               "quit with .quit or Ctrl-D", err=True)
    try:
        for statement in read_statements(prompt):
            try:
                emit(ask(statement), "table", None)
            except TickvaultError as exc:
                click.echo(f"tickvault: {exc}", err=True)
    finally:
        if history is not None:
            try:
                history.write_history_file(HISTORY)
            except OSError:
                pass


@click.command("sql")
@click.argument("query", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, exists=True), help="Read the query from this file ('-' or no QUERY on a pipe: stdin).")
@click.option("--hot", is_flag=True, help="Run on the hot store (PostgreSQL), read-only, this installation's schema first on the search path.")
@click.option("--print-script", "script_only", is_flag=True, help="Print the DuckDB script that attaches the lake (for the DuckDB CLI or a notebook) and stop.")
@click.option("--writable", is_flag=True, help="With --print-script: attach read-write (default READ_ONLY, safe next to the archiver).")
@click.option("--first-year", type=int, help="First year of the calendar table tv_calendar (default: 2015).")
@click.option("--last-year", type=int, help="Last year of tv_calendar (default: next year).")
@common_output
@click.pass_context
def sql_cmd(ctx: click.Context, query: str | None, file: str | None, hot: bool, script_only: bool, writable: bool, first_year: int | None,
            last_year: int | None, fmt: str, out: str | None) -> None:
    """Run SQL on the lake with the bundled DuckDB: the `ticks` view, the `candles(tf, first_day,
    last_day, symbols := [...], session := 'regular', venue := 'ALL')` macro and `tv_calendar` (KRX
    trading dates). No QUERY on a terminal opens a prompt; on a pipe the query is read from stdin.

    Example: tickvault sql "select venue, count(*) from ticks group by venue"
    """
    settings = get_settings(ctx)
    first, last = _years(first_year, last_year)
    check_out(out)
    if script_only:
        print_script(settings, first, last, writable, out)
        return
    text = _query_text(query, file)
    if hot:
        from ..stores.hot import HotStore

        store = HotStore(settings)
        ask: Callable[[str], pa.Table] = store.user_query
        close: Callable[[], None] = store.close
    else:
        from ..stores.lake import Lake
        from ..stores.lake.location import LakeLocation
        from ..stores.lake.views import open_console, run_query

        Lake(settings).require()
        con = open_console(LakeLocation.of(settings), first, last)

        def ask(statement: str) -> pa.Table:
            return run_query(con, statement)

        close = con.close
    try:
        if text is None:
            interactive(ask)
            return
        try:
            table = ask(text)
        except QueryError as exc:
            fail(str(exc), 2)
    finally:
        close()
    emit(table, fmt, out)


def _query_text(query: str | None, file: str | None) -> str | None:
    """The query from the argument, a file or stdin; None = interactive (a terminal and nothing given)."""
    if query is not None and file is not None:
        fail("give the query as an argument or with --file, not both", 2)
    if file is not None:
        return Path(file).read_text(encoding="utf-8") if file != "-" else sys.stdin.read()
    if query == "-" or (query is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    return query


def print_script(settings: Settings, first: int, last: int, writable: bool, out: str | None) -> None:
    from ..stores.lake import Lake
    from ..stores.lake.location import LakeLocation
    from ..stores.lake.views import lake_script

    if not Lake(settings).exists():
        fail(f"no lake at {settings.lake_dir}: set TICKVAULT_LAKE_DIR to the lake directory (or run `tickvault init`)", 2)
    try:
        script = lake_script(LakeLocation.of(settings), first, last, read_only=not writable)
    except ValueError as exc:
        fail(str(exc), 2)
    if out:
        Path(out).write_text(script, encoding="utf-8")
        click.echo(f"wrote {out}; run it with `.read {out}` in the DuckDB CLI", err=True)
    else:
        click.echo(script, nl=False)


@click.command("lake-sql")
@click.option("--first-year", type=int, help="First year of the KRX calendar table in the script (default: 2015).")
@click.option("--last-year", type=int, help="Last year of the calendar table (default: next year).")
@click.option("--writable", is_flag=True, help="Attach read-write (default: READ_ONLY, safe next to the archiver).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the script to this file instead of stdout.")
@click.pass_context
def lake_sql_cmd(ctx: click.Context, first_year: int | None, last_year: int | None, writable: bool, out: str | None) -> None:
    """Print the DuckDB script that attaches this installation's lake (= `tickvault sql --print-script`).

    Use: tickvault lake-sql --out lake.sql, then in the DuckDB CLI or a notebook: .read lake.sql
    """
    check_out(out)
    year = datetime.now(KST).year
    print_script(get_settings(ctx), first_year or 2015, last_year or year + 1, writable, out)
