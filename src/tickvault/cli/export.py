"""`tickvault export`: one day's ticks from the hot store or the lake as one plain Parquet file."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.config import Settings
from ..core.wire import NATURAL_KEY, TICK_SCHEMA, kst_day_bounds
from . import fail, get_settings


class ExportError(RuntimeError):
    """The source cannot be read; the message says what to do."""


def read_day(settings: Settings, source: str, day: date, symbols: Sequence[str] | None = None) -> pa.Table:
    """All ticks of one KST date from ``source`` ('hot' or 'cold'), sorted by the natural key."""
    start, end = kst_day_bounds(day)
    if source == "hot":
        from ..stores.hot import HotStore

        store = HotStore(settings)
        try:
            table = store.read_ticks(start, end, symbols)
        finally:
            store.close()
    elif source == "cold":
        from ..stores.lake import Lake
        from ..stores.lake.connection import catalog_path

        if not catalog_path(settings.lake_dir).exists():
            raise ExportError(f"no lake at {settings.lake_dir}; set TICKVAULT_LAKE_DIR to the lake directory (or run `tickvault init`)")
        lake = Lake(settings)
        try:
            table = lake.read_ticks(start, end, symbols)
        finally:
            lake.close()
    else:
        raise ValueError(f"unknown source {source!r}; use hot or cold")
    return table.cast(TICK_SCHEMA).sort_by([(k, "ascending") for k in NATURAL_KEY])


def write_parquet(table: pa.Table, out: str | Path) -> None:
    """Write atomically: a reader never sees half a file, a failed export leaves no file."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, str(tmp), compression="zstd")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


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
    except ExportError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a down server or unreadable lake: one clear line
        where = settings.pg_dsn.split("@")[-1] if source == "hot" else str(settings.lake_dir)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"cannot read the {source} store at {where} ({first}); check that it is up and configured (TICKVAULT_PG_URL / TICKVAULT_LAKE_DIR)")
    write_parquet(table, out)
    summary = {"source": source, "date": day.isoformat(), "symbols": wanted, "ticks": table.num_rows, "out": out}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"exported {table.num_rows} ticks of {day.isoformat()} from {source} to {out}")
