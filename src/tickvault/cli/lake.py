"""`tickvault compact --date D`: merge a day's small lake files."""

from __future__ import annotations

import json
from datetime import date

import click

from . import fail, get_settings


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date; use YYYY-MM-DD (a KST trading date)") from None


@click.command("compact")
@click.option("--date", "day_text", required=True, metavar="YYYY-MM-DD", help="KST trading date whose files to merge.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def compact_cmd(ctx: click.Context, day_text: str, as_json: bool) -> None:
    """Merge the day's small Parquet files into few large sorted ones.

    Safe while the cold archiver ingests (it waits for the merge); rows and every
    snapshot stay readable, time travel to before the merge included.
    """
    day = parse_day(day_text)
    settings = get_settings(ctx)
    from ..stores.lake import Lake

    if not Lake(settings).exists():
        fail(f"no lake at {settings.lake_dir} (no catalog file); check TICKVAULT_LAKE_DIR or run `tickvault init`")
    lake = Lake(settings)
    try:
        result = lake.compact(day)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        fail(f"compaction of {day} failed: {exc}".splitlines()[0])
    finally:
        lake.close()
    if as_json:
        click.echo(json.dumps({"date": day.isoformat(), **result}))
    else:
        click.echo(
            f"{day}: {result['files_before']} -> {result['files_after']} files, {result['rows']} ticks ({result['seconds']}s)"
        )
