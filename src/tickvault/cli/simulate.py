"""`tickvault simulate`: a realistic two-venue (KRX + NXT) trading day into the stream (and a truth file)."""

from __future__ import annotations

import json
import sys

import click

from ..core.config import redact_dsn
from . import fail, get_settings


@click.command("simulate")
@click.option("--date", "day_text", metavar="YYYY-MM-DD", help="KST trading date to simulate (default: today in KST).")
@click.option("--symbols", default=20, show_default=True, type=click.IntRange(1, 99_999), help="Number of symbols.")
@click.option("--ticks", default=200_000, show_default=True, type=click.IntRange(2), help="Distinct ticks to generate.")
@click.option("--nxt-share", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of the symbols that also trade on NXT (0: a KRX-only day).")
@click.option("--universe", "write_universe", is_flag=True,
              help="Also record the day's universe ((venue, symbol) pairs) in both stores, as the morning refresh does.")
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
    nxt_share: float,
    write_universe: bool,
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
    around a previous close, every session of the session table for KRX and (for the
    NXT-eligible share of the symbols) NXT, each venue with its own cumulative volume.
    """
    from ..core.sharding import publisher_for, stream_client
    from ..core.stream import FrameLimits
    from ..dev.simulate import day_of, describe, generate_day, plan_day, publish, session_times, store_universe, write_truth

    try:
        day = day_of(day_text)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        table = generate_day(day, symbols=symbols, ticks=ticks, seed=seed, nxt_share=nxt_share)
    except ValueError as exc:
        fail(str(exc), 2)
    if truth:
        write_truth(table, truth)
    if not session_times(day).trading_day:
        click.echo(f"note: {day.isoformat()} is not a KRX trading day; simulated with regular hours", err=True)
    codes = sorted(set(table.column("symbol").to_pylist()))
    summary: dict[str, object] = {"date": day.isoformat(), "seed": seed, **describe(table), "codes": codes, "truth": truth}
    if write_universe:
        from ..core.errors import TickvaultError

        try:
            summary["universe"] = store_universe(get_settings(ctx), day, plan_day(symbols, ticks, seed, _share(day, nxt_share)))
        except TickvaultError as exc:
            fail(f"{exc}; the universe was not recorded")
    if not no_publish:
        settings = get_settings(ctx)
        client = stream_client(settings)
        where = redact_dsn(settings.redis_dsn)  # never print a password
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
                frames=FrameLimits(settings.frame_max_trades, settings.frame_max_bytes),
            )
        except KeyboardInterrupt:
            fail(f"interrupted after {sent[0]} of {sent[1]} entries were published to {settings.stream}", 130)
        if show is not None:
            click.echo("", err=True)
        client.close()
        summary.update(
            stream=settings.stream,
            entries=result.entries,
            stream_entries=result.stream_entries,
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
            f"published {summary['entries']} ticks ({summary['ticks']} distinct, {summary['duplicates']} re-sent) "
            f"for {summary['symbols']} symbols on {summary['date']} to {summary['stream']} as {summary['stream_entries']} stream entries "
            f"in {summary['seconds']} s"
            + (f"; truth in {truth}" if truth else "")
        )
    if not as_json:
        click.echo(f"symbols: {' '.join(codes)}")


def _share(day, nxt_share: float) -> float:
    """The NXT share generate_day used: none before NXT's launch."""
    from ..dev.simulate import venue_sessions

    return nxt_share if venue_sessions(day, "NXT") else 0.0


def _progress_printer():
    def show(done: int, total: int) -> None:
        click.echo(f"\rpublishing {done}/{total} ({100 * done // max(total, 1)}%)", err=True, nl=False)

    return show
