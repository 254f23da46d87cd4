"""`tickvault candles`, `tickvault ticks` and `tickvault lake-sql`."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
import pyarrow as pa

from ..core.errors import QueryError, TickvaultError
from ..core.wire import KST
from . import fail, get_settings

if TYPE_CHECKING:
    from ..services.api import Session, Source, Vault, VenueArg

FORMATS = ("table", "csv", "json", "parquet")

_common = [
    click.option("--start", required=True, help="First KST trading date YYYY-MM-DD (or an ISO-8601 instant)."),
    click.option("--end", required=True, help="Last KST trading date YYYY-MM-DD, inclusive (or an exclusive ISO-8601 instant)."),
    click.option("--source", type=click.Choice(["auto", "hot", "cold"]), default="auto", show_default=True,
                 help="auto: hot store for the dates it holds in full, the lake before."),
    click.option("--as-of", "as_of", help="Read the lake as of a snapshot id or an ISO-8601 instant (reproducible backtests)."),
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True),
    click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of stdout (required for parquet)."),
]


def common_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_common):
        fn = option(fn)
    return fn


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(KST).isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _rows(table: pa.Table) -> list[list[str]]:
    columns = [[_text(v) for v in col.to_pylist()] for col in table.columns]
    return [list(r) for r in zip(*columns)] if columns else []


def render(table: pa.Table, fmt: str) -> bytes:
    """The table as bytes in ``fmt``: times in KST with offset, decimals exact."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        return buf.getvalue()
    rows = _rows(table)
    names = table.column_names
    if fmt == "json":
        records = [dict(zip(names, r)) for r in rows]
        for record, raw in zip(records, table.to_pylist()):
            for name, value in raw.items():
                if isinstance(value, int) or value is None:
                    record[name] = value
        return (json.dumps(records, ensure_ascii=False) + "\n").encode()
    if fmt == "csv":
        import csv

        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
        return text.getvalue().encode()
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    numeric = [pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_floating(t) for t in table.schema.types]
    lines = ["  ".join(n.rjust(w) if num else n.ljust(w) for n, w, num in zip(names, widths, numeric)).rstrip()]
    for r in rows:
        lines.append("  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(r, widths, numeric)).rstrip())
    lines.append(f"({len(rows)} rows)")
    return ("\n".join(lines) + "\n").encode()


def emit(table: pa.Table, fmt: str, out: str | None) -> None:
    if fmt == "parquet" and not out:
        fail("--format parquet needs --out FILE (binary output is not written to a terminal)", 2)
    data = render(table, fmt)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {table.num_rows} rows to {path}", err=True)


def _run(ctx: click.Context, ask: Callable[[Vault], pa.Table], fmt: str, out: str | None) -> None:
    """Open a Vault, ask one question, print the answer: bad questions exit 2, store problems 1."""
    from ..services.api import Vault

    try:
        with Vault(get_settings(ctx)) as vault:
            table = ask(vault)
    except QueryError as exc:
        fail(str(exc), 2)
    except TickvaultError as exc:
        fail(str(exc))
    emit(table, fmt, out)


@click.command("candles")
@click.argument("symbols", metavar="SYMBOL[,SYMBOL…]")
@click.option("--tf", required=True, help="Timeframe: 1s…59s, 1m…480m, 1h…8h, 1d, 1w, 1mo.")
@click.option("--session", type=click.Choice(["regular", "extended", "all"]), default="regular", show_default=True,
              help="regular: KRX open to its closing auction; extended (or all): every session, 07:00-20:00.")
@click.option("--venue", type=click.Choice(["krx", "nxt", "all"], case_sensitive=False), default="all", show_default=True,
              help="One venue's trades, or all: both venues' trades merged into each bar.")
@click.option("--fill", is_flag=True, help="Emit empty buckets as flat bars at the previous close with zero volume.")
@common_options
@click.pass_context
def candles_cmd(ctx: click.Context, symbols: str, tf: str, session: Session, venue: str, fill: bool, start: str, end: str,
                source: Source, as_of: str | None, fmt: str, out: str | None) -> None:
    """OHLCV bars (open/close by cum_volume, turnover, vwap) of any timeframe, KST session-aligned.

    Example: tickvault candles 005930,000660 --tf 15m --start 2026-11-02 --end 2026-11-06
    """
    chosen = cast("VenueArg", venue.upper())
    _run(ctx, lambda vault: vault.candles(symbols, tf, start, end, source=source, session=session, venue=chosen, fill=fill, as_of=as_of),
         fmt, out)


@click.command("ticks")
@click.argument("symbols", metavar="SYMBOL[,SYMBOL…]")
@click.option("--venue", type=click.Choice(["krx", "nxt", "all"], case_sensitive=False), default="all", show_default=True,
              help="One venue's trades, or all (each row says its venue).")
@common_options
@click.pass_context
def ticks_cmd(ctx: click.Context, symbols: str, venue: str, start: str, end: str, source: Source, as_of: str | None, fmt: str,
              out: str | None) -> None:
    """Trades of the given symbols, ordered by symbol, venue, trading date, cum_volume.

    Example: tickvault ticks 005930 --start 2026-11-20 --end 2026-11-20 --format parquet --out t.parquet
    """
    chosen = cast("VenueArg", venue.upper())
    _run(ctx, lambda vault: vault.ticks(symbols, start, end, source=source, venue=chosen, as_of=as_of), fmt, out)


@click.command("lake-sql")
@click.option("--first-year", type=int, help="First year of the KRX calendar table in the script (default: 2015).")
@click.option("--last-year", type=int, help="Last year of the calendar table (default: next year).")
@click.option("--writable", is_flag=True, help="Attach read-write (default: READ_ONLY, safe next to the archiver).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the script to this file instead of stdout.")
@click.pass_context
def lake_sql_cmd(ctx: click.Context, first_year: int | None, last_year: int | None, writable: bool, out: str | None) -> None:
    """Print a DuckDB script that attaches this installation's lake and defines the `ticks` view
    and the `candles(tf, first_day, last_day, symbols := [...], session := 'regular')` table macro.

    Use: tickvault lake-sql --out lake.sql, then in the DuckDB CLI or a notebook: .read lake.sql
    """
    from ..stores.lake import Lake
    from ..stores.lake.location import LakeLocation
    from ..stores.lake.views import lake_script

    settings = get_settings(ctx)
    if not Lake(settings).exists():
        fail(f"no lake at {settings.lake_dir}: set TICKVAULT_LAKE_DIR to the lake directory (or run `tickvault init`)", 2)
    year = datetime.now(KST).year
    try:
        script = lake_script(LakeLocation.of(settings), first_year or 2015, last_year or year + 1, read_only=not writable)
    except ValueError as exc:
        fail(str(exc), 2)
    if out:
        Path(out).write_text(script, encoding="utf-8")
        click.echo(f"wrote {out}; run it with `.read {out}` in the DuckDB CLI", err=True)
    else:
        click.echo(script, nl=False)
