"""`tickvault compact --date D` (merge a day's small lake files) and `tickvault lake files|expire|migrate`."""

from __future__ import annotations

import json

import click

from . import fail, get_settings
from . import parse_day_text as parse_day
from .progress import progress


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
        with progress(f"compact {day}", "merges") as step:  # one merge: a bar with the elapsed time
            step(0, 1)
            result = lake.compact(day)
            step(1, 1)
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


@click.group("lake")
def lake_group() -> None:
    """The lake's files for other engines, snapshot expiry, and the move to S3 (docs/scale-out.md)."""


@lake_group.command("files")
@click.option("--date", "day_text", metavar="YYYY-MM-DD", help="Only the files of this KST trading date (default: all).")
@click.pass_context
def files_cmd(ctx: click.Context, day_text: str | None) -> None:
    """Print the Parquet files of the lake's current snapshot, one per line, from the catalog.

    Read exactly these (pyarrow, Spark, ...): files replaced by compaction stay in storage until
    cleanup, so listing the directory or bucket yourself counts ticks twice.
    """
    from ..stores.lake import Lake

    day = parse_day(day_text) if day_text else None
    with Lake(get_settings(ctx)) as lake:
        for path in lake.live_files(day):
            click.echo(path)


@lake_group.command("expire")
@click.option("--older-than-days", type=click.IntRange(min=0), required=True, help="Forget snapshots older than this many days.")
@click.pass_context
def expire_cmd(ctx: click.Context, older_than_days: int) -> None:
    """Forget old snapshots (time travel before them ends) and delete the files only they used."""
    from datetime import timedelta

    from ..stores.lake import Lake

    with Lake(get_settings(ctx)) as lake:
        result = lake.expire_snapshots(timedelta(days=older_than_days))
    click.echo(f"expired {result['snapshots']} snapshots, deleted {result['files_deleted']} files")


@lake_group.command("migrate")
@click.option("--to", "target", required=True, metavar="s3://BUCKET/PREFIX", help="Where the lake's files go (TICKVAULT_S3_* give access).")
@click.pass_context
def migrate_cmd(ctx: click.Context, target: str) -> None:
    """Move the lake's Parquet files from local disk to S3: copy, prove equal, then switch the catalog.

    Stop the cold archivers first (they would wait on the writer lock for the whole copy). Afterwards
    set TICKVAULT_LAKE_DATA to the printed path on every host; the local files can then be removed.
    """
    from ..stores.lake.migrate import migrate_to_s3

    result = migrate_to_s3(get_settings(ctx), target)
    rows = ", ".join(f"{name} {count}" for name, count in result.tables.items())
    click.echo(f"copied {result.files} files ({result.bytes} bytes), equal rows ({rows}); the catalog now points to {result.target}")
    click.echo(f"set TICKVAULT_LAKE_DATA={result.target.rstrip('/')} on every host")
