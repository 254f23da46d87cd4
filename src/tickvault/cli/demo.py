"""`tickvault demo`: the whole pipeline on this machine, with checks; exit 0 only if all pass."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from ..core.errors import ConfigError
from . import fail, get_settings


@click.command("demo")
@click.option("--date", "day_text", metavar="YYYY-MM-DD", help="KST trading date to simulate (default: the latest KRX trading day).")
@click.option("--symbols", default=20, show_default=True, type=click.IntRange(1, 99_999), help="Number of symbols.")
@click.option("--ticks", default=200_000, show_default=True, type=click.IntRange(2), help="Distinct ticks to simulate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the simulated day.")
@click.option("--dup-rate", default=0.01, show_default=True, type=click.FloatRange(0, 1), help="Fraction of ticks re-sent.")
@click.option("--shuffle-window", default=50, show_default=True, type=click.IntRange(0), help="Local reordering of the stream.")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 250),
              help="Simulate this many trading days ending at --date, each opening from the previous close.")
@click.option("--lake", "lake_dir", type=click.Path(file_okay=False), help="Keep the demo's lake in this (new) directory for queries afterwards.")
@click.option("--keep", is_flag=True, help="With configured servers: keep the demo schema and stream for a look afterwards.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def demo_cmd(
    ctx: click.Context,
    day_text: str | None,
    symbols: int,
    ticks: int,
    seed: int,
    dup_rate: float,
    shuffle_window: int,
    days: int,
    lake_dir: str | None,
    keep: bool,
    as_json: bool,
) -> None:
    """Simulate a trading day through both archivers and check that nothing was lost or doubled.

    With nothing configured, embedded PostgreSQL and Redis are started (from their PyPI
    wheels) and the lake lives in a temporary directory. With TICKVAULT_PG_URL /
    TICKVAULT_REDIS_URL set, those servers are used under a fresh schema and stream that
    are removed afterwards. Checks: generated == hot == cold tick counts, no duplicates,
    cum_volume continuity per symbol, stored values equal to the generated ones, no dead
    letters. Exit 0 only if every check passes.
    """
    from ..core import calendar
    from ..dev.demo import DemoOptions, DemoStalled, run_demo
    from ..dev.simulate import day_of

    settings = get_settings(ctx)
    try:
        day = day_of(day_text)
    except ValueError as exc:
        fail(str(exc), 2)
    if day_text is None and not calendar.is_trading_day(day):
        day = calendar.previous_trading_day(day)  # the latest trading day, so its bars exist
    if ticks < 2 * symbols:
        fail(f"--ticks must be at least 2 per symbol (>= {2 * symbols})", 2)
    options = DemoOptions(day, symbols, ticks, seed, dup_rate, shuffle_window, keep, days, None if lake_dir is None else Path(lake_dir))
    say = (lambda text: click.echo(text, err=True)) if as_json else click.echo
    progress = _progress_line if sys.stderr.isatty() else None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # stop everything we started, as on Ctrl-C
    try:
        report = run_demo(settings, options, say=say, progress=progress)
    except KeyboardInterrupt:
        fail("interrupted; everything the demo started was stopped", 130)
    except DemoStalled as exc:
        fail(f"demo stalled: {exc}")
    except ConfigError as exc:  # e.g. the embedded servers' extra is not installed
        fail(str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - setup failures: one line that says what to do
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"demo could not run: {type(exc).__name__}: {first}")
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(_render(report))
    if not report.ok:
        failed = [c.name for c in report.checks if not c.ok]
        fail(f"demo checks FAILED: {', '.join(failed)}")


def _render(report) -> str:
    width = max(len(c.name) for c in report.checks) + 2
    lines = ["", "check".ljust(width) + "result"]
    for c in report.checks:
        lines.append(f"{c.name.ljust(width)}{'ok  ' if c.ok else 'FAIL'}  {c.detail}")
    lines.append("")
    lines.append("all checks passed" if report.ok else "SOME CHECKS FAILED")
    return "\n".join(lines)


def _progress_line(text: str) -> None:
    click.echo("\r\x1b[2K" + text, err=True, nl=not text)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
