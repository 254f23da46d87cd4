"""`tickvault run` / `tickvault health`: supervision, and the whole process against real
PostgreSQL, Redis and a DuckLake lake (ingest, reconcile, trim, metrics table, endpoint)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path

import psycopg

from factories import one_symbol_ticks
from helpers import subprocess_env
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.core.wire import KST, Tick
from tickvault.ops.metrics import PipelineMetrics
from tickvault.ops.run import Component, Supervisor
from tickvault.ops.schedule import Daily, Scheduler

CLI = [sys.executable, "-c", "from tickvault.cli import main; main()"]


class Flaky:
    """A component that crashes on its first ``crashes`` runs, then runs until stopped."""

    def __init__(self, log: list[str], crashes: int) -> None:
        self.log = log
        self.crashes = crashes
        self.stop_event = threading.Event()

    def run(self) -> int:
        self.log.append("run")
        if self.log.count("run") <= self.crashes:
            raise RuntimeError("boom")
        self.stop_event.wait()
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.log.append("close")


def test_supervisor_restarts_crashed_component_with_backoff() -> None:
    settings = Settings()  # no server: the metrics live in memory
    metrics = PipelineMetrics(settings)
    log: list[str] = []
    sup = Supervisor(metrics, backoff_initial_s=0.05, backoff_max_s=0.2)
    sup.add(Component("flaky", lambda: Flaky(log, crashes=3)))
    sup.start()
    deadline = time.monotonic() + 10
    while metrics.value("tickvault_component_up", component="flaky") != 1.0 or log.count("run") < 4:
        assert time.monotonic() < deadline, log
        time.sleep(0.02)
    assert metrics.value("tickvault_component_restarts_total", component="flaky") == 3
    sup.stop()
    assert sup.wait(5)
    assert metrics.value("tickvault_component_up", component="flaky") == 0
    assert log.count("close") == 4  # every run's resources were released


def test_supervisor_retries_a_component_that_cannot_start() -> None:
    settings = Settings()  # no server: the metrics live in memory
    metrics = PipelineMetrics(settings)
    attempts: list[int] = []

    def factory() -> Flaky:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("database down")
        return Flaky([], crashes=0)

    sup = Supervisor(metrics, backoff_initial_s=0.05, backoff_max_s=0.1)
    sup.add(Component("db", factory))
    sup.start()
    deadline = time.monotonic() + 10
    while metrics.value("tickvault_component_up", component="db") != 1.0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sup.stop()
    assert sup.wait(5)
    assert len(attempts) == 3


def test_scheduled_job_outcomes_reach_the_metrics() -> None:
    settings = Settings()  # no server: the metrics live in memory
    metrics = PipelineMetrics(settings)
    outcomes = iter([RuntimeError("broker down"), {"gaps_found": 2, "ok": 1}])

    def recovery(day):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    now = datetime(2026, 11, 26, 17, 0, tzinfo=KST)
    sched = Scheduler([Daily("recovery", dtime(16, 10), recovery, retry_after_s=0)], clock=lambda: now, record=metrics.record_job)
    assert sched.run_due() == ["recovery"]
    assert metrics.value("tickvault_job_last_ok", job="recovery") == 0
    assert sched.run_due() == ["recovery"]  # retried (retry_after_s=0)
    assert metrics.value("tickvault_job_runs_total", job="recovery", result="failed") == 1
    assert metrics.value("tickvault_job_runs_total", job="recovery", result="ok") == 1
    assert metrics.value("tickvault_job_result", job="recovery", field="gaps_found") == 2
    assert metrics.value("tickvault_job_last_success_timestamp_seconds", job="recovery") > 0


# ---------------------------------------------------------------------- the real process
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(s: Settings, port: int) -> dict[str, str]:
    return subprocess_env(
        s,
        TICKVAULT_HOT_MODE="postgres",
        TICKVAULT_METRICS_PORT=str(port),
        TICKVAULT_METRICS_INTERVAL_S="0.5",
        TICKVAULT_RECONCILE_INTERVAL_S="10",
        TICKVAULT_RECONCILE_SETTLE_S="0",
        TICKVAULT_TRIM_INTERVAL_S="1",
        TICKVAULT_COLD_MAX_WAIT_MS="200",
    )


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def _ticks(n: int) -> list[Tick]:
    start = (datetime.now(KST) - timedelta(minutes=5)).replace(microsecond=0)
    if start.date() != datetime.now(KST).date():  # just after midnight KST: stay inside today
        start = datetime.now(KST).replace(hour=0, minute=0, second=0, microsecond=0)
    return one_symbol_ticks(n, start, step=timedelta(milliseconds=100), price=Decimal("70000"), volume=10, received_at=datetime.now(UTC))


def _wait(what: str, check, timeout_s: float = 60.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"tickvault run exited early ({proc.returncode}) while waiting for {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _scrape(port: int) -> str:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return ""


def test_run_ingests_reconciles_trims_and_exposes_metrics(settings: Settings, rclient, tmp_path: Path) -> None:
    port = _free_port()
    env = _env(settings, port)
    assert _cli("health", env=env).returncode == 1  # nothing running yet
    assert _cli("init", env=env).returncode == 0

    n = 3000
    Publisher(rclient, settings.stream).publish(_ticks(n))
    log_file = open(tmp_path / "run.log", "w+")  # noqa: SIM115 - the child writes it for the whole test
    proc = subprocess.Popen([*CLI, "run"], env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    proc.stderr = log_file  # for _wait's message
    try:
        def hot_count() -> int:
            with psycopg.connect(settings.pg_dsn) as conn:
                return conn.execute(f'SELECT count(*) FROM "{settings.pg_schema}".ticks').fetchone()[0] == n

        _wait("hot ticks", hot_count, proc=proc)
        body = _wait("both groups counted", lambda: (b := _scrape(port)) and 'tickvault_ingest_rows_total{group="cold"} 3000.0' in b and b, proc=proc)
        for series in (
            'tickvault_ingest_rows_total{group="hot"} 3000.0',
            'tickvault_component_up{component="archiver-hot"} 1.0',
            'tickvault_component_up{component="metrics"} 1.0',
            "tickvault_archiver_heartbeat_timestamp_seconds",
            "tickvault_e2e_latency_histogram_seconds_count",
            "tickvault_consumer_lag",
            "tickvault_redis_memory_bytes",
            "tickvault_host_cpu_percent",
        ):
            assert series in body, series

        health = _cli("health", "--json", env=env)
        assert health.returncode == 0, health.stderr
        assert '"healthy": true' in health.stdout

        # the trim job empties the stream once both groups acked everything
        _wait("stream trimmed", lambda: rclient.xlen(settings.stream) == 0, proc=proc)
        # the sync scheduler reconciled (after its 10 s interval) and found the stores consistent
        def reconciled() -> bool:
            body = _scrape(port)
            stamp = re.search(r"^tickvault_reconcile_last_run_timestamp_seconds ([0-9.e+]+)$", body, re.M)
            return bool(stamp) and float(stamp.group(1)) > 0 and "\ntickvault_reconcile_consistent 1.0" in body

        _wait("reconcile", reconciled, timeout_s=40, proc=proc)
        assert "tickvault_stream_ceiling_alarm 0.0" in _scrape(port)

        def metrics_rows() -> int:
            with psycopg.connect(settings.pg_dsn) as conn:
                return conn.execute(
                    f"""SELECT count(DISTINCT ts) FROM "{settings.pg_schema}".metrics
                        WHERE name = 'tickvault_ingest_rows_total' AND labels->>'group' = 'cold' AND value = %s""", (n,)
                ).fetchone()[0] >= 2

        _wait("metrics table", metrics_rows, proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log_file.seek(0)
        output = log_file.read()
        log_file.close()
    assert code == 0, output
    assert "stopped cleanly" in output
    assert sorted((g["name"], g["pending"]) for g in rclient.xinfo_groups(settings.stream)) == [("cold", 0), ("hot", 0)]
    assert _cli("health", env=env).returncode == 1  # stopped: unhealthy, with a reason
    assert _cli("health", "--deps-only", env=env).returncode == 0


def test_health_reports_a_stale_archiver() -> None:
    settings = Settings()  # no server: the metrics live in memory
    from tickvault.ops.health import check_endpoint
    from tickvault.ops.metrics import serve

    metrics = PipelineMetrics(settings)
    metrics.set_component("archiver-hot", True)
    metrics.heartbeat_ts.labels("hot").set(time.time() - 300)
    server = serve(metrics, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        problems = check_endpoint(url, max_age_s=60)
        assert len(problems) == 1 and "archiver hot has not read the stream" in problems[0]
        assert check_endpoint(url, max_age_s=600) == []
        metrics.set_component("archiver-hot", False)
        assert any("component archiver-hot is down" in p for p in check_endpoint(url, max_age_s=600))
    finally:
        server.shutdown()


def test_run_refuses_unknown_components(settings: Settings) -> None:
    result = _cli("run", "--only", "hot,bogus", env=_env(settings, _free_port()))
    assert result.returncode == 2
    assert "bogus" in result.stderr


def test_daily_compaction_merges_the_days_lake_files(settings: Settings) -> None:
    from tickvault.core.calendar import trading_date
    from tickvault.core.wire import ticks_to_table
    from tickvault.ops.run import daily_compaction
    from tickvault.stores.lake import Lake

    start = datetime(2026, 11, 20, 9, 0, tzinfo=KST)
    ticks = one_symbol_ticks(40, start, price=Decimal(70000))
    lake = Lake(settings.model_copy(update={"cold_inline_row_limit": 0}))
    for i in range(0, 40, 10):  # four commits: four small files (inlining off)
        lake.upsert(ticks_to_table(ticks[i : i + 10]))
    day = trading_date(start)
    before = lake.file_count(day)
    lake.close()
    result = daily_compaction(settings)(day)
    lake = Lake(settings)
    assert before == 4 and lake.file_count(day) == 1
    assert lake.count_ticks(day) == 40
    assert isinstance(result, dict)
    lake.close()


def test_a_hot_archiver_process_does_not_load_duckdb_or_the_broker_clients() -> None:
    """`tickvault archive hot` imports ops.run; its scheduled jobs import their services when they
    run, so the hot archiver's memory holds no DuckDB (~55 MB of peak RSS) and no broker client."""
    code = ("import sys, tickvault.cli.archive, tickvault.ops.run, tickvault.services.archiver; "
            "print(sorted(m for m in ('duckdb', 'httpx', 'websockets', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
