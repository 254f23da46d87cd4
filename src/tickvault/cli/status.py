"""`tickvault status`: the stream, its consumer groups, the DLQ, the day's counts and each
store's checkpoint (probes in ops/status.py); exit 1 when any part is down or missing."""

from __future__ import annotations

import json
from typing import Any

import click

from ..ops.status import OK, PARTS, status
from . import fail, get_settings


def _venues(part: dict[str, Any]) -> str:
    """'; KRX 20/20 symbols, NXT 6/6' — symbols with ticks against the day's universe."""
    shown = [f"{venue} {v['symbols']}" + (f"/{v['universe']}" if v["universe"] is not None else "") + " symbols"
             for venue, v in part.get("venues_today", {}).items() if v["symbols"] or v["universe"]]
    return "; " + ", ".join(shown) if shown else ""


def render(report: dict[str, Any]) -> str:
    lines: list[str] = []
    r = report["redis"]
    if r["state"] == OK:
        alarm = "  OVER stream_max_entries: are the archivers running?" if r.get("over_limit") else ""
        lines.append(f"stream  {r['stream']}: {r['length']} entries, dead letters {r['dlq_length']} ({r['dlq_stream']}){alarm}")
        lines.append(f"        last id {r['last_id']}")
        for name, side in r["side_streams"].items():
            keep = side["retention"]
            age = "" if side["oldest_age_days"] is None else f", oldest {side['oldest_age_days']} days"
            lines.append(f"{name:<7} {side['stream']}: {side['length']} entries{age} (kept: {keep['max_entries']} entries, "
                         f"{keep['max_age_days']} days)")
        if not r["groups"]:
            lines.append("groups  none yet (no archiver has run on this stream)")
        for name, g in r["groups"].items():
            store = report[name] if name in ("hot", "cold") else {}  # the group each store's archiver reads
            committed = f"  committed {store.get('checkpoint')}" if store.get("state") == OK else ""
            lines.append(f"group   {name:<5} lag {g['lag']}  pending {g['pending']}  consumers {g['consumers']}  "
                         f"delivered {g['last_delivered_id']}{committed}")
    else:
        lines.append(f"stream  {r['stream']}: DOWN — {r.get('error')}")
    h = report["hot"]
    if h["state"] == OK:
        version = f" {h['extension_version']}" if h.get("extension_version") else ""
        mode = f"timescaledb{version}" if h["mode"] == "timescaledb" else h["mode"]
        lines.append(f"hot     {h['ticks_today']} ticks on {report['date']} (schema {h['schema']}, mode {mode}){_venues(h)}")
    else:
        lines.append(f"hot     {h['state'].upper()} — {h.get('error')}")
    c = report["cold"]
    if c["state"] == OK:
        lines.append(f"cold    {c['ticks_today']} ticks on {report['date']} (lake {c['lake_dir']}){_venues(c)}")
    else:
        lines.append(f"cold    {c['state'].upper()} — {c.get('error')}")
    return "\n".join(lines)


@click.command("status")
@click.option("--date", "day_text", metavar="YYYY-MM-DD", help="KST date to count ticks for (default: today in KST).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def status_cmd(ctx: click.Context, day_text: str | None, as_json: bool) -> None:
    """Stream length and last id, per-group lag, pending and last-delivered id, DLQ length, the
    day's tick counts and the last stream id each store committed. Exit 1 when any part is
    down or missing."""
    from ..dev.simulate import day_of

    settings = get_settings(ctx)
    try:
        day = day_of(day_text)
    except ValueError:
        fail(f"--date {day_text!r} is not a date; use YYYY-MM-DD", 2)
    report = status(settings, day)
    click.echo(json.dumps(report) if as_json else render(report))
    if not report["ok"]:
        bad = [f"{part} {report[part]['state']}" for part in PARTS if report[part]["state"] != OK]
        fail(f"not healthy: {', '.join(bad)} (see above)")
