"""Every Grafana panel's SQL runs, as the read-only reader role, against a hot store filled by
a simulated day through the real archivers and the real metrics sampler, and returns rows.

Grafana's macros are substituted the way its PostgreSQL datasource expands them."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tickvault.core.calendar import previous_trading_day, trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.stream import Publisher
from tickvault.core.wire import KST
from tickvault.dev.simulate import generate_day, publish
from tickvault.ops.metrics import MetricsSampler, PipelineMetrics
from tickvault.ops.run import ArchiverRunnable, Component, Supervisor, daily_recovery
from tickvault.ops.schedule import Daily, Scheduler
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.roles import create_roles

GRAFANA = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
INTERVAL_S = 60
DATASOURCE_UID = "tickvault-pg"


def dashboards() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((GRAFANA / "dashboards").glob("*.json"))]


def render(text: str, start: datetime, end: datetime, variables: dict[str, str]) -> str:
    """Expand Grafana's PostgreSQL macros and template variables like the datasource does."""
    epoch = lambda col: f"floor(extract(epoch FROM {col}) / {INTERVAL_S}) * {INTERVAL_S}"  # noqa: E731
    text = re.sub(r"\$__timeGroupAlias\((\w+),\s*\$__interval\)", lambda m: f'to_timestamp({epoch(m[1])}) AS "time"', text)
    text = re.sub(r"\$__timeGroup\((\w+),\s*\$__interval\)", lambda m: f"to_timestamp({epoch(m[1])})", text)
    text = re.sub(r"\$__timeFilter\((\w+)\)", lambda m: f"{m[1]} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'", text)
    text = text.replace("$__timeFrom()", f"'{start.isoformat()}'").replace("$__timeTo()", f"'{end.isoformat()}'")
    text = text.replace("$__interval_ms", str(INTERVAL_S * 1000)).replace("$__interval", f"{INTERVAL_S}s")
    for name, value in variables.items():
        text = text.replace(f"${{{name}:sqlstring}}", "'" + value.replace("'", "''") + "'")
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in text, f"unexpanded macro or variable in: {text}"
    return text


def _as(url: str, role: str) -> str:
    params = conninfo_to_dict(url)
    params["user"] = role
    return make_conninfo(**params)


def _fill(s: Settings, rclient) -> tuple[datetime, datetime]:
    """A simulated trading day through both archivers with metrics attached, plus metric samples."""
    day = previous_trading_day(datetime.now(KST).date())
    store = HotStore(s)
    store.init()
    truth = generate_day(day, symbols=4, ticks=4000, seed=11)
    publish(Publisher(rclient, s.stream), truth, dup_rate=0.01, shuffle_window=20, seed=3)
    metrics = PipelineMetrics(s)
    supervisor = Supervisor(metrics)  # registers the component series the dashboard shows
    for group in ("hot", "cold"):
        runnable = ArchiverRunnable(s, group, metrics, consumer=f"grafana-{group}")
        supervisor.add(Component(f"archiver-{group}", lambda r=runnable: r))
        metrics.set_component(f"archiver-{group}", True)
        runnable.archiver.run_until_idle(idle_reads=2)
        runnable.close()
    start, end = trading_day_bounds(day)
    store.refresh_candles(start, end)
    # no broker credentials here: recorded as a skipped (not verified) day
    recovery = Daily("recovery", dtime(0, 0), daily_recovery(s, "KRX"), every_day=True)
    assert Scheduler([recovery], record=metrics.record_job).run_due() == ["recovery"]
    assert recovery.state.last_ok is False
    sampler = MetricsSampler(metrics, s, redis_client=rclient)
    for _ in range(3):
        assert sampler.sample_once() > 0
    sampler.writer.close()
    assert store.count_ticks(day) == truth.num_rows
    store.close()
    return start - timedelta(days=1), datetime.now(KST) + timedelta(hours=1)


def _check_every_panel(s: Settings, rclient, test_id: str) -> int:
    start, end = _fill(s, rclient)
    roles = s.model_copy(update={"pg_writer_role": f"tvtest_{test_id}_w", "pg_reader_role": f"tvtest_{test_id}_r"})
    create_roles(HotStore(roles))
    ran = 0
    try:
        with psycopg.connect(_as(s.pg_dsn, roles.pg_reader_role), autocommit=True) as conn:
            for board in dashboards():
                variables: dict[str, list[str]] = {}
                for var in board["templating"]["list"]:
                    if var["type"] == "custom":
                        variables[var["name"]] = [v.strip() for v in var["query"].split(",")]
                    else:
                        rows = conn.execute(render(var["query"], start, end, {})).fetchall()
                        assert rows, f"{board['title']}: variable {var['name']} has no values"
                        variables[var["name"]] = [rows[0][0]]
                for panel in board["panels"]:
                    for target in panel["targets"]:
                        combos = [{}]
                        for name, values in variables.items():
                            if f"${name}" in target["rawSql"] or f"${{{name}" in target["rawSql"]:
                                combos = [{**c, name: v} for c in combos for v in values]
                            else:
                                combos = [{**c, name: values[0]} for c in combos]
                        for combo in combos:
                            rows = conn.execute(render(target["rawSql"], start, end, combo)).fetchall()
                            assert rows, f"{board['title']} / {panel['title']} {combo}: no rows"
                            ran += 1
    finally:
        with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
            for role in (roles.pg_writer_role, roles.pg_reader_role):
                conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
                conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))
    return ran


def test_dashboards_are_well_formed() -> None:
    boards = dashboards()
    assert {b["uid"] for b in boards} == {"tickvault-market", "tickvault-pipeline"}
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "tickvault.yaml").read_text())["datasources"][0]
    assert datasource["uid"] == DATASOURCE_UID and datasource["user"] == "${TICKVAULT_PG_READER_ROLE}"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "tickvault.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    market = next(b for b in boards if b["uid"] == "tickvault-market")
    assert {v["name"] for v in market["templating"]["list"]} == {"symbol", "timeframe", "venue"}
    assert next(v for v in market["templating"]["list"] if v["name"] == "venue")["query"] == "KRX,NXT"
    # both venues and the combined tape are on the boards
    titles = [p["title"] for b in boards for p in b["panels"]]
    assert any("combined tape" in t for t in titles) and any("NXT share" in t for t in titles)
    assert any("by venue" in t for t in [p["title"] for p in next(b for b in boards if b["uid"] == "tickvault-pipeline")["panels"]])
    assert any(p["type"] == "candlestick" for p in market["panels"])
    for board in boards:
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["title"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
            assert panel["targets"] and all(t["rawSql"].strip() for t in panel["targets"]), panel["title"]
    health = next(b for b in boards if b["uid"] == "tickvault-pipeline")
    marked = [p["title"] for p in health["panels"] if len(p["fieldConfig"]["defaults"]["thresholds"]["steps"]) > 1]
    for alarm in ("Consumer lag", "Dead letters", "End-to-end latency", "heartbeat", "disk", "ceiling", "Jobs"):
        assert any(alarm.lower() in t.lower() for t in marked), f"no threshold marked on a {alarm} panel"


def test_every_panel_returns_rows_postgres_mode(settings: Settings, rclient, test_id: str) -> None:
    assert _check_every_panel(settings, rclient, test_id) >= 20


@pytest.mark.timescaledb
def test_every_panel_returns_rows_timescale_mode(tsdb_settings: Settings, rclient, test_id: str) -> None:
    assert _check_every_panel(tsdb_settings, rclient, test_id) >= 20
