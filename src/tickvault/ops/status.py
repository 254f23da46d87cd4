"""What `tickvault status` reports: the stream and its consumer groups, the DLQ, the day's tick
counts (and per venue: symbols with ticks against the day's universe) and the last stream id
each store committed.

Each part is probed on its own, so one server being down never hides the others: it is
reported as down (``state``), never raised. Nothing is created: a missing schema or lake is
reported as missing.

A store's checkpoint is the highest stream id whose batch that store committed, written in
the same transaction as the batch. It is an audit marker, not a skip filter: entries up to
it may still be pending (committed, not yet acked, e.g. after a crash) and are written again
idempotently when re-read. Comparing it with the group's last-delivered id shows how far a
store's durable writes trail what Redis handed out.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import redis

from ..core.config import Settings
from ..core.errors import StoreUnavailable
from ..core.sharding import shard_streams, stream_client
from ..core.stream import group_info, parse_id, stream_last_id
from ..core.wire import VENUES
from ..stores.hot import HotStore
from ..stores.lake import Lake

OK, DOWN, MISSING = "ok", "down", "missing"
PARTS = ("redis", "hot", "cold")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def venues_today(store: HotStore | Lake, day: date) -> dict[str, dict[str, int | None]]:
    """Per venue: symbols with ticks on ``day``, and how many the day's universe expects (None: not recorded)."""
    seen = store.symbols_of_day(day)
    universe = store.read_universe(day)
    return {
        venue: {"symbols": sum(1 for v, _ in seen if v == venue),
                "universe": sum(1 for v, _ in universe if v == venue) if universe else None}
        for venue in VENUES
    }


def redis_status(settings: Settings) -> dict[str, Any]:
    """The stream's length, dead letters and groups; with shards, summed over them (``shards``
    holds each shard's own figures)."""
    out: dict[str, Any] = {"state": DOWN, "stream": settings.stream, "dlq_stream": settings.dlq_stream}
    if settings.redis_cluster:
        client = stream_client(settings)
    else:
        client = redis.Redis.from_url(settings.redis_dsn, decode_responses=True, socket_connect_timeout=3, socket_timeout=10)
    try:
        shards = {key: _stream_status(client, key) for key in shard_streams(settings)}
        out["dlq_length"] = int(client.xlen(settings.dlq_stream))
        out["side_streams"] = {
            "dlq": side_stream_status(client, settings.dlq_stream, settings.dlq_max_entries, settings.dlq_max_age_days),
            "gaps": side_stream_status(client, f"{settings.stream}:gaps", settings.gaps_max_entries, settings.gaps_max_age_days),
        }
        if len(shards) == 1:
            out.update(shards[settings.stream])
        else:
            out["length"] = sum(s["length"] for s in shards.values())
            ids = [s["last_id"] for s in shards.values() if s["last_id"]]
            out["last_id"] = max(ids, key=parse_id) if ids else None
            out["groups"] = _summed_groups([s["groups"] for s in shards.values()])
            out["shards"] = shards
        out["over_limit"] = out["length"] > settings.stream_max_entries
        out["state"] = OK
    except redis.RedisError as exc:
        out["error"] = f"Redis unreachable: {first_line(exc)}"
    finally:
        client.close()
    return out


def side_stream_status(client: redis.Redis, stream: str, max_entries: int, max_age_days: int) -> dict[str, Any]:
    """A side stream's length, the age of its oldest entry and the retention that bounds both."""
    oldest = client.execute_command("XRANGE", stream, "-", "+", "COUNT", 1, NEVER_DECODE=True)
    oldest_ms = parse_id(oldest[0][0].decode())[0] if oldest else None
    return {
        "stream": stream,
        "length": int(client.xlen(stream)),
        "oldest_age_days": None if oldest_ms is None else round((time.time() * 1000 - oldest_ms) / 86_400_000, 2),
        "retention": {"max_entries": max_entries, "max_age_days": max_age_days},
    }


def _stream_status(client: Any, stream: str) -> dict[str, Any]:
    return {
        "length": int(client.xlen(stream)),
        "last_id": stream_last_id(client, stream),
        "groups": {
            name: {
                "lag": None if info.get("lag") is None else int(info["lag"]),
                "pending": int(info.get("pending", 0)),
                "consumers": int(info.get("consumers", 0)),
                "last_delivered_id": info.get("last-delivered-id"),
            }
            for name, info in sorted(group_info(client, stream).items())
        },
    }


def _summed_groups(per_shard: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each group's lag and pending summed over the shards (consumers: the most on any shard;
    delivered: the shard furthest behind)."""
    out: dict[str, dict[str, Any]] = {}
    for groups in per_shard:
        for name, info in groups.items():
            total = out.setdefault(name, {"lag": 0, "pending": 0, "consumers": 0, "last_delivered_id": info["last_delivered_id"]})
            if info["last_delivered_id"] and parse_id(info["last_delivered_id"]) < parse_id(total["last_delivered_id"] or "0-0"):
                total["last_delivered_id"] = info["last_delivered_id"]
            total["lag"] = None if total["lag"] is None or info["lag"] is None else total["lag"] + info["lag"]
            total["pending"] += info["pending"]
            total["consumers"] = max(total["consumers"], info["consumers"])
    return out


def hot_status(settings: Settings, day: date) -> dict[str, Any]:
    out: dict[str, Any] = {"state": DOWN, "schema": settings.pg_schema}
    store = HotStore(settings)
    try:
        if not store.initialized():
            out.update(state=MISSING, error=f"no tickvault tables in schema {settings.pg_schema}; run `tickvault init`")
            return out
        out["mode"] = store.mode
        out["extension_version"] = store.extension_version
        out["ticks_today"] = store.count_ticks(day)
        out["venues_today"] = venues_today(store, day)
        out["checkpoint"] = store.checkpoint(settings.stream, "hot")
        out["state"] = OK
    except StoreUnavailable as exc:
        out["error"] = f"PostgreSQL unreachable: {first_line(exc)}"
    except Exception as exc:  # noqa: BLE001 - any other failure is still reported, not raised
        out["error"] = f"hot store unreadable: {first_line(exc)}"
    finally:
        store.close()
    return out


def cold_status(settings: Settings, day: date) -> dict[str, Any]:
    out: dict[str, Any] = {"state": DOWN, "lake_dir": str(settings.lake_dir)}
    if not Lake(settings).exists():
        out.update(state=MISSING, error=f"no lake at {settings.lake_dir}; run `tickvault init` or set TICKVAULT_LAKE_DIR")
        return out
    lake = Lake(settings)
    try:
        out["ticks_today"] = lake.count_ticks(day)
        out["venues_today"] = venues_today(lake, day)
        out["checkpoint"] = lake.checkpoint(settings.stream, "cold")
        out["state"] = OK
    except Exception as exc:  # noqa: BLE001 - locked beyond the retry budget, corrupt catalog, ...
        out["error"] = f"lake unreadable: {first_line(exc)}"
    finally:
        lake.close()
    return out


def status(settings: Settings, day: date) -> dict[str, Any]:
    """Everything `status` reports, as a JSON-able dict; ``ok`` is False when any part is not."""
    report: dict[str, Any] = {
        "date": day.isoformat(),
        "redis": redis_status(settings),
        "hot": hot_status(settings, day),
        "cold": cold_status(settings, day),
    }
    report["ok"] = all(report[part]["state"] == OK for part in PARTS)
    return report
