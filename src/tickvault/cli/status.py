"""`tickvault status`: the stream, its consumer groups, the DLQ and today's counts in both stores.

Each part is probed on its own, so one server being down never hides the others: it is
reported as down and the command exits 1.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click

from ..core.config import Settings
from . import fail, get_settings

OK, DOWN, MISSING = "ok", "down", "missing"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def redis_status(settings: Settings) -> dict[str, Any]:
    import redis

    from ..core.stream import group_info

    out: dict[str, Any] = {"state": DOWN, "stream": settings.stream, "dlq_stream": settings.dlq_stream}
    client = redis.Redis.from_url(settings.redis_dsn, decode_responses=True, socket_connect_timeout=3, socket_timeout=10)
    try:
        out["length"] = int(client.xlen(settings.stream))
        out["dlq_length"] = int(client.xlen(settings.dlq_stream))
        out["groups"] = {
            name: {
                "lag": None if info.get("lag") is None else int(info["lag"]),
                "pending": int(info.get("pending", 0)),
                "consumers": int(info.get("consumers", 0)),
                "last_delivered_id": info.get("last-delivered-id"),
            }
            for name, info in sorted(group_info(client, settings.stream).items())
        }
        out["over_limit"] = out["length"] > settings.stream_max_entries
        out["state"] = OK
    except redis.RedisError as exc:
        out["error"] = f"Redis unreachable: {_first_line(exc)}"
    finally:
        client.close()
    return out


def hot_status(settings: Settings, day: date) -> dict[str, Any]:
    from ..core.errors import StoreUnavailable
    from ..stores.hot import HotStore

    out: dict[str, Any] = {"state": DOWN, "schema": settings.pg_schema}
    store = HotStore(settings)
    try:
        if not store.initialized():
            out.update(state=MISSING, error=f"no tickvault tables in schema {settings.pg_schema}; run `tickvault init`")
            return out
        out["mode"] = store.mode
        out["extension_version"] = store.extension_version
        out["ticks_today"] = store.count_ticks(day)
        out["state"] = OK
    except StoreUnavailable as exc:
        out["error"] = f"PostgreSQL unreachable: {_first_line(exc)}"
    except Exception as exc:  # noqa: BLE001 - any other failure is still reported, not raised
        out["error"] = f"hot store unreadable: {_first_line(exc)}"
    finally:
        store.close()
    return out


def cold_status(settings: Settings, day: date) -> dict[str, Any]:
    from ..stores.lake.connection import catalog_path

    out: dict[str, Any] = {"state": DOWN, "lake_dir": str(settings.lake_dir)}
    if not catalog_path(settings.lake_dir).exists():
        out.update(state=MISSING, error=f"no lake at {settings.lake_dir}; run `tickvault init` or set TICKVAULT_LAKE_DIR")
        return out
    from ..stores.lake import Lake

    lake = Lake(settings)
    try:
        out["ticks_today"] = lake.count_ticks(day)
        out["state"] = OK
    except Exception as exc:  # noqa: BLE001 - locked beyond the retry budget, corrupt catalog, ...
        out["error"] = f"lake unreadable: {_first_line(exc)}"
    finally:
        lake.close()
    return out


def collect_status(settings: Settings, day: date) -> dict[str, Any]:
    """Everything `status` reports, as a JSON-able dict; ``ok`` is False when any part is not."""
    report: dict[str, Any] = {
        "date": day.isoformat(),
        "redis": redis_status(settings),
        "hot": hot_status(settings, day),
        "cold": cold_status(settings, day),
    }
    report["ok"] = all(report[part]["state"] == OK for part in ("redis", "hot", "cold"))
    return report


def render(report: dict[str, Any]) -> str:
    lines: list[str] = []
    r = report["redis"]
    if r["state"] == OK:
        alarm = "  OVER stream_max_entries: are the archivers running?" if r.get("over_limit") else ""
        lines.append(f"stream  {r['stream']}: {r['length']} entries, dead letters {r['dlq_length']} ({r['dlq_stream']}){alarm}")
        if not r["groups"]:
            lines.append("groups  none yet (no archiver has run on this stream)")
        for name, g in r["groups"].items():
            lines.append(f"group   {name:<5} lag {g['lag']}  pending {g['pending']}  consumers {g['consumers']}  last {g['last_delivered_id']}")
    else:
        lines.append(f"stream  {r['stream']}: DOWN — {r.get('error')}")
    h = report["hot"]
    if h["state"] == OK:
        version = f" {h['extension_version']}" if h.get("extension_version") else ""
        mode = f"timescaledb{version}" if h["mode"] == "timescaledb" else h["mode"]
        lines.append(f"hot     {h['ticks_today']} ticks on {report['date']} (schema {h['schema']}, mode {mode})")
    else:
        lines.append(f"hot     {h['state'].upper()} — {h.get('error')}")
    c = report["cold"]
    if c["state"] == OK:
        lines.append(f"cold    {c['ticks_today']} ticks on {report['date']} (lake {c['lake_dir']})")
    else:
        lines.append(f"cold    {c['state'].upper()} — {c.get('error')}")
    return "\n".join(lines)


@click.command("status")
@click.option("--date", "day_text", metavar="YYYY-MM-DD", help="KST date to count ticks for (default: today in KST).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def status_cmd(ctx: click.Context, day_text: str | None, as_json: bool) -> None:
    """Stream length, per-group lag and pending, DLQ length, and the day's tick counts
    in the hot store and the lake. Exit 1 when any part is down or missing."""
    from ..dev.simulate import day_of

    settings = get_settings(ctx)
    try:
        day = day_of(day_text)
    except ValueError:
        fail(f"--date {day_text!r} is not a date; use YYYY-MM-DD", 2)
    report = collect_status(settings, day)
    click.echo(json.dumps(report) if as_json else render(report))
    if not report["ok"]:
        bad = [f"{part} {report[part]['state']}" for part in ("redis", "hot", "cold") if report[part]["state"] != OK]
        fail(f"not healthy: {', '.join(bad)} (see above)")
