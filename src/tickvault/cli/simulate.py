"""`tickvault simulate`: a realistic KRX trading day into the stream (and a truth file)."""

from __future__ import annotations

import json
import sys

import click

from . import fail, get_settings


@click.command("simulate")
@click.option("--date", "day_text", metavar="YYYY-MM-DD", help="KST trading date to simulate (default: today in KST).")
@click.option("--symbols", default=20, show_default=True, type=click.IntRange(1, 99_999), help="Number of symbols.")
@click.option("--ticks", default=200_000, show_default=True, type=click.IntRange(2), help="Distinct ticks to generate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same day: the run is deterministic.")
@click.option("--pace", type=click.Choice(["max", "realtime"]), default="max", show_default=True,
              help="max: as fast as Redis takes it; realtime: at exchange-time spacing.")
@click.option("--dup-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Fraction of ticks sent twice (a reconnecting feed).")
@click.option("--shuffle-window", default=0, show_default=True, type=click.IntRange(0), help="Move each entry by up to this many positions.")
@click.option("--truth", type=click.Path(dir_okay=False, writable=True), help="Write every distinct tick generated to this Parquet file.")
@click.option("--no-publish", is_flag=True, help="Only generate (and write --truth); send nothing to Redis.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def simulate_cmd(
    ctx: click.Context,
    day_text: str | None,
    symbols: int,
    ticks: int,
    seed: int,
    pace: str,
    dup_rate: float,
    shuffle_window: int,
    truth: str | None,
    no_publish: bool,
    as_json: bool,
) -> None:
    """Publish simulated trades through the real publisher (source "sim").

    Ticks follow KRX rules: 6-digit codes, the post-2023 tick-size grid, ±30 % limits
    around a previous close, 09:00–15:20 continuous trading with a busy open and close,
    and a closing-auction print at 15:30:00.
    """
    from ..core.sharding import publisher_for, stream_client
    from ..dev.simulate import day_of, describe, generate_day, publish, session_times, write_truth

    try:
        day = day_of(day_text)
    except ValueError:
        fail(f"--date {day_text!r} is not a date; use YYYY-MM-DD", 2)
    try:
        table = generate_day(day, symbols=symbols, ticks=ticks, seed=seed)
    except ValueError as exc:
        fail(str(exc), 2)
    if truth:
        write_truth(table, truth)
    if not session_times(day).trading_day:
        click.echo(f"note: {day.isoformat()} is not a KRX trading day; simulated with regular hours", err=True)
    summary: dict[str, object] = {"date": day.isoformat(), "seed": seed, **describe(table), "truth": truth}
    if not no_publish:
        settings = get_settings(ctx)
        client = stream_client(settings)
        where = settings.redis_dsn.rsplit("@", 1)[-1]  # never print a password
        try:
            client.ping()
        except Exception as exc:  # noqa: BLE001 - any connection failure gets the same advice
            fail(f"Redis at {where} is unreachable ({exc}); start it or set TICKVAULT_REDIS_URL")
        show = _progress_printer() if sys.stderr.isatty() and not as_json else None
        sent = [0, 0]

        def progress(done: int, total: int) -> None:
            sent[0], sent[1] = done, total
            if show is not None:
                show(done, total)

        try:
            result = publish(
                publisher_for(settings, client),
                table,
                dup_rate=dup_rate,
                shuffle_window=shuffle_window,
                seed=seed,
                pace=pace,
                on_progress=progress,
            )
        except KeyboardInterrupt:
            fail(f"interrupted after {sent[0]} of {sent[1]} entries were published to {settings.stream}", 130)
        if show is not None:
            click.echo("", err=True)
        client.close()
        summary.update(
            stream=settings.stream,
            entries=result.entries,
            duplicates=result.entries - result.distinct,
            seconds=round(result.seconds, 3),
            entries_per_s=round(result.entries / result.seconds) if result.seconds > 0 else None,
        )
    if as_json:
        click.echo(json.dumps(summary))
    elif no_publish:
        click.echo(f"generated {summary['ticks']} ticks for {summary['symbols']} symbols on {summary['date']}" + (f"; truth in {truth}" if truth else ""))
    else:
        click.echo(
            f"published {summary['entries']} entries ({summary['ticks']} distinct ticks, {summary['duplicates']} re-sent) "
            f"for {summary['symbols']} symbols on {summary['date']} to {summary['stream']} in {summary['seconds']} s"
            + (f"; truth in {truth}" if truth else "")
        )


def _progress_printer():
    def show(done: int, total: int) -> None:
        click.echo(f"\rpublishing {done}/{total} ({100 * done // max(total, 1)}%)", err=True, nl=False)

    return show
