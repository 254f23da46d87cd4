"""`tickvault export`: one day's ticks from the hot store or the lake as one plain Parquet file."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from ..core.config import redact_dsn
from ..core.errors import StoreNotInitialized
from ..services.export import read_day, write_parquet
from . import fail, get_settings


def parse_symbols(values: Sequence[str]) -> list[str] | None:
    symbols = [s.strip() for value in values for s in value.split(",") if s.strip()]
    return symbols or None


@click.command("export")
@click.option("--source", type=click.Choice(["hot", "cold"]), required=True, help="hot: PostgreSQL/TimescaleDB; cold: the lake.")
@click.option("--date", "day_text", required=True, metavar="YYYY-MM-DD", help="KST trading date.")
@click.option("--symbols", multiple=True, metavar="CODE[,CODE...]", help="Only these symbols (repeat or comma-separate).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True), help="Parquet file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def export_cmd(ctx: click.Context, source: str, day_text: str, symbols: tuple[str, ...], out: str, as_json: bool) -> None:
    """Write one day's ticks (natural key + all columns) as one plain Parquet file.

    Rows are sorted by (symbol, ts, cum_volume) with the columns of the tick schema, so
    exports of the two stores can be compared byte for byte.
    """
    from ..dev.simulate import day_of

    settings = get_settings(ctx)
    try:
        day = day_of(day_text)
    except ValueError:
        fail(f"--date {day_text!r} is not a date; use YYYY-MM-DD", 2)
    wanted = parse_symbols(symbols)
    try:
        table = read_day(settings, source, day, wanted)
    except StoreNotInitialized as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a down server or unreadable lake: one clear line
        where = redact_dsn(settings.pg_dsn) if source == "hot" else str(settings.lake_dir)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"cannot read the {source} store at {where} ({first}); check that it is up and configured (TICKVAULT_PG_URL / TICKVAULT_LAKE_DIR)")
    write_parquet(table, out)
    summary = {"source": source, "date": day.isoformat(), "symbols": wanted, "ticks": table.num_rows, "out": out}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"exported {table.num_rows} ticks of {day.isoformat()} from {source} to {out}")
