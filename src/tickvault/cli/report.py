"""`tickvault report --date D --out report.html`: the day's integrity as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from . import get_settings, parse_day_text
from .query import check_out


@click.command("report")
@click.option("--date", "day_text", default="today", show_default=True, help="KST trading date (YYYY-MM-DD, YYYYMMDD, yesterday, -1d).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write (works offline: plotly is embedded).")
@click.option("--symbol", help="Symbol whose candles the page shows (default: the day's most traded).")
@click.pass_context
def report_cmd(ctx: click.Context, day_text: str, out: str, symbol: str | None) -> None:
    """Per venue: a coverage heat map (symbols x minutes: proven, gap, recovered, no trading), the
    volume profile, the gaps with what recovery did, hot vs cold agreement, and one symbol's candles.

    Example: tickvault report --date yesterday --out report.html
    """
    from ..ops.report import write_report

    check_out(out)
    written = write_report(get_settings(ctx), parse_day_text(day_text), Path(out), symbol)
    click.echo(f"wrote {written}", err=True)
