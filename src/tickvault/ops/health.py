"""`tickvault health`: is a running `tickvault run` healthy, and do its servers answer.

Healthy: the metrics endpoint answers, every component is up, and every archiver read the
stream within ``health_max_age_s`` — read from the endpoint, so a container health check
needs nothing but HTTP.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families

from ..core.config import Settings


def endpoint_url(settings: Settings) -> str:
    host = settings.metrics_host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.metrics_port}/metrics"


def check_endpoint(url: str, max_age_s: float, now: float | None = None) -> list[str]:
    """Problems seen on a running `tickvault run`'s /metrics (empty list: healthy)."""
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


def health_problems(settings: Settings, *, url: str | None = None, max_age_s: float | None = None,
                    endpoint: bool = True, dependencies: bool = False) -> list[str]:
    """Everything `tickvault health` checks, as problems (empty: healthy)."""
    problems: list[str] = []
    if endpoint:
        problems += check_endpoint(url or endpoint_url(settings), settings.health_max_age_s if max_age_s is None else max_age_s)
    if dependencies:
        problems += check_dependencies(settings)
    return problems
