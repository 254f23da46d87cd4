"""`tickvault run`, `tickvault health` and `tickvault maintain`."""

from __future__ import annotations

import json
import logging
import signal
import sys

import click

from . import fail, get_settings

log = logging.getLogger(__name__)


@click.command("run")
@click.option(
    "--only",
    default="hot,cold,reconcile,recovery,compact,metrics,endpoint",
    show_default=True,
    help="Comma-separated components to run (hot, cold, reconcile, recovery, compact, metrics, endpoint).",
)
@click.option("--stop-timeout", default=120.0, show_default=True, help="Seconds to wait for components to finish after SIGTERM.")
@click.pass_context
def run_cmd(ctx: click.Context, only: str, stop_timeout: float) -> None:
    """Run the archivers, reconciler, daily recovery and metrics in one supervised process.

    A crashed component is restarted with backoff. SIGTERM/SIGINT stop everything: each
    archiver finishes and acks the batch in hand. Metrics: http://METRICS_HOST:METRICS_PORT/metrics.
    """
    from ..ops.run import build_supervisor

    settings = get_settings(ctx)
    components = tuple(part.strip() for part in only.split(",") if part.strip())
    try:
        supervisor = build_supervisor(settings, components)
    except ValueError as exc:
        fail(f"{exc} (--only)", 2)

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s received: stopping all components", signal.Signals(signum).name)
        supervisor.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    log.info("tickvault run: %s", ", ".join(c.name for c in supervisor.components))
    supervisor.start()
    while not supervisor.stop_event.wait(0.5):
        pass
    if not supervisor.wait(stop_timeout):
        fail(f"components still busy {stop_timeout:.0f}s after the stop; unacked entries stay pending and are re-read on the next start", 75)
    log.info("tickvault run stopped cleanly")


@click.command("health")
@click.option("--url", help="Metrics endpoint to check (default: from TICKVAULT_METRICS_HOST/PORT).")
@click.option("--max-age", type=float, help="Max seconds since an archiver last read the stream (default: TICKVAULT_HEALTH_MAX_AGE_S).")
@click.option("--deps/--no-deps", default=False, help="Also check that Redis and PostgreSQL answer.")
@click.option("--deps-only", is_flag=True, help="Only check Redis and PostgreSQL (no running `tickvault run` needed).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def health_cmd(ctx: click.Context, url: str | None, max_age: float | None, deps: bool, deps_only: bool, as_json: bool) -> None:
    """Exit 0 when `tickvault run` is healthy (for container health checks), else 1 with the reason.

    Healthy: the metrics endpoint answers, every component is up, and every archiver read
    the stream within --max-age seconds.
    """
    from ..ops.health import endpoint_url, health_problems

    settings = get_settings(ctx)
    target = url or endpoint_url(settings)
    problems = health_problems(settings, url=target, max_age_s=max_age, endpoint=not deps_only, dependencies=deps or deps_only)
    if as_json:
        click.echo(json.dumps({"healthy": not problems, "problems": problems, "endpoint": None if deps_only else target}))
    if problems:
        fail("; ".join(problems))
    if not as_json:
        click.echo("healthy")


@click.command("maintain")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@click.pass_context
def maintain_cmd(ctx: click.Context, as_json: bool) -> None:
    """Hot store housekeeping as the schema owner: partitions ahead and retention (PostgreSQL mode).

    The writer role cannot create or drop partitions; run this daily with the owner's
    TICKVAULT_PG_URL (systemd timer or cron). In TimescaleDB mode the database's jobs do it.
    """
    from ..stores.hot import HotStore

    settings = get_settings(ctx)
    store = HotStore(settings)
    try:
        report = store.maintain()
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        fail(f"hot maintenance failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
             "run it with the schema owner's TICKVAULT_PG_URL")
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report, default=str))
    else:
        dropped = report.get("dropped_partitions") or []
        click.echo(f"hot store maintained (mode {report.get('mode')}); dropped {len(dropped)} partition(s)")
    sys.exit(0)
