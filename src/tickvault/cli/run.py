"""`tickvault run`, `tickvault health` and `tickvault maintain`."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
import urllib.error
import urllib.request

import click

from ..core.config import Settings
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


def _endpoint_url(settings: Settings) -> str:
    host = settings.metrics_host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.metrics_port}/metrics"


def check_endpoint(url: str, max_age_s: float, now: float | None = None) -> list[str]:
    """Problems seen on a running `tickvault run`'s /metrics (empty list: healthy)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        body = urllib.request.urlopen(url, timeout=5).read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return [f"metrics endpoint {url} unreachable ({exc}); is `tickvault run` running?"]
    now = time.time() if now is None else now
    problems: list[str] = []
    archivers = 0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "tickvault_component_up" and sample.value != 1:
                problems.append(f"component {sample.labels.get('component')} is down (restarting; see the log)")
            if sample.name == "tickvault_archiver_heartbeat_timestamp_seconds":
                archivers += 1
                age = now - sample.value
                if age > max_age_s:
                    problems.append(
                        f"archiver {sample.labels.get('group')} has not read the stream for {age:.0f}s "
                        "(a store or Redis is down, or it is stuck retrying a write)"
                    )
    if archivers == 0 and "tickvault_component_up" in body and 'component="archiver-' in body:
        problems.append("no archiver heartbeat yet (still starting?)")
    return problems


def check_dependencies(settings: Settings) -> list[str]:
    """Redis and PostgreSQL answer (without a running `tickvault run`)."""
    import psycopg
    import redis

    problems: list[str] = []
    try:
        client = redis.Redis.from_url(settings.redis_dsn, socket_timeout=5, socket_connect_timeout=5)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        problems.append(f"Redis unreachable ({exc}); check TICKVAULT_REDIS_URL")
    try:
        with psycopg.connect(settings.pg_dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL unreachable ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc}); check TICKVAULT_PG_URL")
    return problems


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
    settings = get_settings(ctx)
    target = url or _endpoint_url(settings)
    problems: list[str] = []
    if not deps_only:
        problems += check_endpoint(target, max_age if max_age is not None else settings.health_max_age_s)
    if deps or deps_only:
        problems += check_dependencies(settings)
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
