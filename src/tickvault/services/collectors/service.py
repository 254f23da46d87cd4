"""Wiring collectors from Settings: URLs, app keys, limits, the outbox. The CLI and
`tickvault run` both build collectors here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

from ...core.config import Settings
from ...core.sharding import publisher_for
from .base import CollectorStats, FatalCollectorError, Outbox, gaps_stream
from .kis import KisSession, plan_sessions
from .kiwoom import KiwoomSession, check_limit
from .ws import WsOptions, WsSession

KIS_WS_REAL = "ws://ops.koreainvestment.com:21000"
KIS_WS_PAPER = "ws://ops.koreainvestment.com:31000"


@dataclass
class Collector:
    sessions: list[WsSession]
    outbox: Outbox
    stats: CollectorStats


def kis_ws_url(settings: Settings) -> str:
    if settings.kis_ws_url:
        return settings.kis_ws_url
    return KIS_WS_PAPER if settings.kis_paper else KIS_WS_REAL


def ws_options(settings: Settings, url: str) -> WsOptions:
    return WsOptions(
        url=url,
        reconnect_initial_s=settings.collect_reconnect_initial_s,
        reconnect_max_s=settings.collect_reconnect_max_s,
        stall_s=settings.collect_stall_s,
        session_hours=settings.collect_session_hours,
    )


def kis_apps(settings: Settings) -> list[tuple[str, str]]:
    """(appkey, appsecret) of the main key, then the extra ones; never logged."""
    if settings.kis_appkey is None or settings.kis_appsecret is None:
        raise FatalCollectorError("KIS keys missing: set TICKVAULT_KIS_APPKEY and TICKVAULT_KIS_APPSECRET")
    apps = [(settings.kis_appkey.get_secret_value(), settings.kis_appsecret.get_secret_value())]
    extra = settings.kis_ws_extra_apps.get_secret_value() if settings.kis_ws_extra_apps else ""
    for n, pair in enumerate(p.strip() for p in extra.split(",") if p.strip()):
        key, sep, secret = pair.partition(":")
        if not sep or not key or not secret:
            raise FatalCollectorError(f"TICKVAULT_KIS_WS_EXTRA_APPS entry {n + 1} is not 'appkey:appsecret'")
        apps.append((key, secret))
    return apps


class Credential:
    """A broker credential for a WebSocket login: call it for the current value,
    ``invalidate()`` it when the server refuses it so the next call fetches a new one."""

    def __init__(self, fetch: Callable[[], str], invalidate: Callable[[], None]):
        self._fetch = fetch
        self._invalidate = invalidate

    def __call__(self) -> str:
        return self._fetch()

    def invalidate(self) -> None:
        self._invalidate()

    def __repr__(self) -> str:
        return "Credential(***)"


def kis_approval_key(app_settings: Settings) -> Credential:
    """Approval key of one app key via brokers.kis.KisClient (a refused key: a new client)."""
    from ..brokers.kis import KisClient

    holder: list[KisClient] = []

    def fetch() -> str:
        if not holder:
            holder.append(KisClient(app_settings))
        return holder[0].approval_key()

    def invalidate() -> None:
        if holder:
            holder.pop().close()

    return Credential(fetch, invalidate)


def kis_approval_keys(settings: Settings) -> list[Credential]:
    """One approval-key credential per app key."""
    return [
        kis_approval_key(settings.model_copy(update={"kis_appkey": _secret(appkey), "kis_appsecret": _secret(secret)}))
        for appkey, secret in kis_apps(settings)
    ]


def kiwoom_token(settings: Settings) -> Credential:
    from ..brokers.kiwoom import KiwoomClient

    client = KiwoomClient(settings)
    return Credential(client.token, client.invalidate_token)


def build_kis(
    settings: Settings,
    symbols: Sequence[str],
    client: redis.Redis,
    approval_keys: Sequence[Callable[[], str]] | None = None,
) -> Collector:
    keys = list(approval_keys) if approval_keys is not None else kis_approval_keys(settings)
    chunks = plan_sessions(symbols, len(keys), settings.kis_ws_max_subscriptions)
    stats = CollectorStats()
    outbox = Outbox(client, settings.stream, stats, "collect-kis", settings.retry_max_s, publisher_for(settings, client))
    options = ws_options(settings, kis_ws_url(settings))
    sessions: list[WsSession] = [
        KisSession(f"kis#{n + 1}", chunk, keys[n], options, outbox, stats) for n, chunk in enumerate(chunks)
    ]
    return Collector(sessions, outbox, stats)


def build_kiwoom(
    settings: Settings,
    symbols: Sequence[str],
    client: redis.Redis,
    token: Callable[[], str] | None = None,
) -> Collector:
    unique = check_limit(symbols, settings.kiwoom_ws_max_subscriptions)
    if token is None:
        token = kiwoom_token(settings)
    stats = CollectorStats()
    outbox = Outbox(client, settings.stream, stats, "collect-kiwoom", settings.retry_max_s, publisher_for(settings, client))
    session = KiwoomSession("kiwoom", unique, token, ws_options(settings, settings.kiwoom_ws_url), outbox, stats)
    return Collector([session], outbox, stats)


def read_gaps(client: redis.Redis, stream: str, since: datetime | None = None) -> list[dict[str, str]]:
    """Recorded disconnected windows (oldest first), optionally only those ending after ``since``."""
    rows = [dict(fields) for _, fields in client.xrange(gaps_stream(stream))]
    if since is not None:
        rows = [r for r in rows if datetime.fromisoformat(r["end"]) >= since]
    return rows


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)
