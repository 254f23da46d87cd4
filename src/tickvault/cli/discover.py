"""`tickvault symbols`, `coverage` and `snapshots`: what the archive holds (and held), before the first query."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import click
import pyarrow as pa

from .query import answer, common_output

if TYPE_CHECKING:
    from ..services.api import CoverageSource, Source, VenueArg

_venue = click.option("--venue", type=click.Choice(["krx", "nxt", "all"], case_sensitive=False), default="all", show_default=True,
                      help="Symbols traded on one venue, or on either.")


def _range(day: str | None, start: str | None, end: str | None) -> tuple[str | None, str | None]:
    if day is not None and (start is not None or end is not None):
        raise click.UsageError("give --date or --start/--end, not both")
    if end is not None and start is None:
        raise click.UsageError("--end needs a --start")
    return (day, None) if day is not None else (start, end)


@click.command("symbols")
@click.option("--date", "day", help="One KST date (YYYY-MM-DD, YYYYMMDD, today, -3d); default: every date the archive holds.")
@click.option("--start", help="First KST date of a range.")
@click.option("--end", help="Last KST date of the range, inclusive (default: the start date).")
@_venue
@click.option("--source", type=click.Choice(["auto", "hot", "cold"]), default="auto", show_default=True)
@common_output
@click.pass_context
def symbols_cmd(ctx: click.Context, day: str | None, start: str | None, end: str | None, venue: str, source: Source, fmt: str,
                out: str | None) -> None:
    """The symbols the archive holds ticks for (on a date, a range, or ever), one per line.

    Example: tickvault symbols --date 20261127 --venue nxt
    """
    first, last = _range(day, start, end)
    chosen = cast("VenueArg", venue.upper())
    answer(ctx, lambda vault: pa.table({"symbol": pa.array(vault.symbols(start=first, end=last, venue=chosen, source=source), pa.string())}),
         fmt, out)


@click.command("coverage")
@click.option("--date", "day", help="One KST date; default: every date the archive holds.")
@click.option("--start", help="First KST date of a range.")
@click.option("--end", help="Last KST date of the range, inclusive (default: the start date).")
@click.option("--symbols", "symbols", help="Only these symbols (comma-separated).")
@_venue
@click.option("--source", type=click.Choice(["both", "auto", "hot", "cold"]), default="both", show_default=True,
              help="both: each store's own rows; auto: the stores a query would read.")
@click.option("--as-of", "as_of", help="The lake as of a snapshot id or an instant (implies the lake only).")
@common_output
@click.pass_context
def coverage_cmd(ctx: click.Context, day: str | None, start: str | None, end: str | None, symbols: str | None, venue: str,
                 source: CoverageSource, as_of: str | None, fmt: str, out: str | None) -> None:
    """Per store, KST date, venue and symbol: ticks, first and last trade, and `proven` (the last
    reconcile found the series complete).

    Example: tickvault coverage --start -7d --end today --format csv
    """
    first, last = _range(day, start, end)
    chosen = cast("VenueArg", venue.upper())
    answer(ctx, lambda vault: vault.coverage(first, last, symbols=symbols, venue=chosen, source=source, as_of=as_of), fmt, out)




@click.command("snapshots")
@click.option("--limit", type=int, default=30, show_default=True, help="How many, newest first.")
@click.option("--since", help="Only snapshots from this KST date (today, -3d, 20261127) or instant on.")
@common_output
@click.pass_context
def snapshots_cmd(ctx: click.Context, limit: int, since: str | None, fmt: str, out: str | None) -> None:
    """The lake's snapshots: id, time, what changed (archiver batch, recovery, reconcile, rebuild,
    compaction). Pass an id or a time to --as-of to read the lake exactly as it was.

    Example: tickvault candles 005930 --tf 1d --start -30d --end today --as-of 1234
    """
    answer(ctx, lambda vault: vault.snapshots(limit, since), fmt, out)
