"""What `tickvault status` reports: the stream and its consumer groups, the DLQ, the day's tick
counts and the last stream id each store committed.

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

from datetime import date
from typing import Any

import redis

from ..core.config import Settings
from ..core.errors import StoreUnavailable
from ..core.stream import group_info, stream_last_id
from ..stores.hot import HotStore
from ..stores.lake import Lake

OK, DOWN, MISSING = "ok", "down", "missing"
PARTS = ("redis", "hot", "cold")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def redis_status(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"state": DOWN, "stream": settings.stream, "dlq_stream": settings.dlq_stream}
    client = redis.Redis.from_url(settings.redis_dsn, decode_responses=True, socket_connect_timeout=3, socket_timeout=10)
    try:
        out["length"] = int(client.xlen(settings.stream))
        out["dlq_length"] = int(client.xlen(settings.dlq_stream))
        out["last_id"] = stream_last_id(client, settings.stream)
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
        out["error"] = f"Redis unreachable: {first_line(exc)}"
    finally:
        client.close()
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
