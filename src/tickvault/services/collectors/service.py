"""Wiring collectors from Settings: URLs, app keys, limits, the outbox. The CLI and
`tickvault run` both build collectors here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from ...core.calendar import collect_window, is_trading_day, next_trading_day
from ...core.config import Settings
from ...core.sharding import publisher_for
from ...core.stream import FrameLimits, SideRetention
from ...core.wire import KST, UTC, VENUES, Venue
from .base import CollectorStats, FatalCollectorError, Outbox, Pair, gaps_stream
from .kis import KisSession
from .kiwoom import KiwoomSession
from .plan import SubscriptionPlan, plan_subscriptions, wanted_pairs
from .ws import WsOptions, WsSession, run_sessions

log = logging.getLogger(__name__)

KIS_WS_REAL = "ws://ops.koreainvestment.com:21000"
KIS_WS_PAPER = "ws://ops.koreainvestment.com:31000"


KIS_PAPER_NO_NXT = "KIS serves no NXT feed (H0NXCNT0) on paper accounts (모의투자); use a real account for NXT"
KIWOOM_MOCK_NO_NXT = "Kiwoom's mock server serves KRX only; use the real server for NXT"


@dataclass
class Collector:
    sessions: list[WsSession]
    outbox: Outbox
    stats: CollectorStats
    plan: SubscriptionPlan


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


def outbox_for(settings: Settings, client: redis.Redis, stats: CollectorStats, stage: str) -> Outbox:
    """A collector's outbox: v2 frames cut by the frame settings, side streams with their retention."""
    return Outbox(
        client, settings.stream, stats, stage, settings.retry_max_s,
        frames=FrameLimits(settings.frame_max_trades, settings.frame_max_bytes, settings.frame_max_delay_ms),
        dlq_retention=SideRetention(settings.dlq_max_entries, settings.dlq_max_age_days),
        gaps_retention=SideRetention(settings.gaps_max_entries, settings.gaps_max_age_days),
        publisher=publisher_for(settings, client),
    )


def kis_plan(settings: Settings, symbols: Sequence[str], *, venues: Collection[Venue] = VENUES,
             universe: Collection[Pair] | None = None, app_count: int | None = None) -> SubscriptionPlan:
    """The KIS plan: KRX for every symbol, NXT for those the day's ``universe`` lists there,
    over ``app_count`` app keys (default: the configured ones) of kis_ws_max_subscriptions each."""
    pairs, uncovered = wanted_pairs(symbols, venues, universe)
    return plan_subscriptions(
        "kis", pairs, app_count if app_count is not None else len(kis_apps(settings)), settings.kis_ws_max_subscriptions,
        nxt_refused=KIS_PAPER_NO_NXT if settings.kis_paper else None, uncovered=uncovered,
        room_hint=" (TICKVAULT_KIS_WS_MAX_SUBSCRIPTIONS per app key); add app keys in TICKVAULT_KIS_WS_EXTRA_APPS",
    )


def kiwoom_plan(settings: Settings, symbols: Sequence[str], *, venues: Collection[Venue] = VENUES,
                universe: Collection[Pair] | None = None) -> SubscriptionPlan:
    """The Kiwoom plan: one session of kiwoom_ws_max_subscriptions items (``CODE``, ``CODE_NX``)."""
    pairs, uncovered = wanted_pairs(symbols, venues, universe)
    return plan_subscriptions(
        "kiwoom", pairs, 1, settings.kiwoom_ws_max_subscriptions,
        nxt_refused=KIWOOM_MOCK_NO_NXT if "mockapi." in settings.kiwoom_ws_url else None, uncovered=uncovered,
        room_hint=" (TICKVAULT_KIWOOM_WS_MAX_SUBSCRIPTIONS); run a second collector with another key",
    )


def log_plan(plan: SubscriptionPlan) -> None:
    """Say at start what is covered, and every pair that is not, with its reason."""
    log.info("subscription plan %s", plan.summary())
    for (venue, symbol), why in plan.uncovered:
        log.error("%s: %s %s NOT collected: %s", plan.broker, venue, symbol, why)


def build_kis(
    settings: Settings,
    plan: SubscriptionPlan,
    client: redis.Redis,
    approval_keys: Sequence[Callable[[], str]] | None = None,
) -> Collector:
    keys = list(approval_keys) if approval_keys is not None else kis_approval_keys(settings)
    if len(plan.sessions) > len(keys):
        raise FatalCollectorError(f"the plan needs {len(plan.sessions)} KIS sessions but {len(keys)} app key(s) are configured; "
                                  "plan with the configured keys (kis_plan)")
    stats = CollectorStats(uncovered=len(plan.uncovered))
    outbox = outbox_for(settings, client, stats, "collect-kis")
    options = ws_options(settings, kis_ws_url(settings))
    sessions: list[WsSession] = [
        KisSession(f"kis#{n + 1}", chunk, keys[n], options, outbox, stats) for n, chunk in enumerate(plan.sessions)
    ]
    log_plan(plan)
    return Collector(sessions, outbox, stats, plan)


def build_kiwoom(
    settings: Settings,
    plan: SubscriptionPlan,
    client: redis.Redis,
    token: Callable[[], str] | None = None,
) -> Collector:
    if token is None:
        token = kiwoom_token(settings)
    stats = CollectorStats(uncovered=len(plan.uncovered))
    outbox = outbox_for(settings, client, stats, "collect-kiwoom")
    options = ws_options(settings, settings.kiwoom_ws_url)
    sessions: list[WsSession] = [KiwoomSession("kiwoom", chunk, token, options, outbox, stats) for chunk in plan.sessions]
    log_plan(plan)
    return Collector(sessions, outbox, stats, plan)


#: How long before the day's first session the plan is made again (universe refreshed).
REPLAN_LEAD = timedelta(minutes=10)


def seconds_to_replan(now: datetime | None = None) -> float:
    """Seconds until ``REPLAN_LEAD`` before the next trading day's first session (session table)."""
    now = (now or datetime.now(UTC)).astimezone(KST)
    day = now.date() if is_trading_day(now.date()) else next_trading_day(now.date())
    while True:
        due = collect_window(day)[0] - REPLAN_LEAD
        if due > now:
            return (due - now).total_seconds()
        day = next_trading_day(day)


async def run_with_daily_plan(
    build: Callable[[SubscriptionPlan], Collector],
    plan: SubscriptionPlan,
    replan: Callable[[], SubscriptionPlan],
    stop: asyncio.Event,
    stats_by_source: MutableMapping[str, CollectorStats],
    source: str,
    wait_s: Callable[[], float] = seconds_to_replan,
) -> Collector:
    """Run a collector until ``stop``; each trading morning, before the first session, make the
    plan again (the day's universe refreshed) and, when it changed, stop the sessions cleanly
    and start them with the new plan — no trading then, so no gap. ``stats_by_source[source]``
    always holds the running collector's counters (the metrics endpoint reads it)."""
    while True:
        collector = build(plan)
        stats_by_source[source] = collector.stats
        sessions_stop = asyncio.Event()
        changed: list[SubscriptionPlan] = []

        async def forward_stop(sessions_stop: asyncio.Event = sessions_stop) -> None:
            await stop.wait()
            sessions_stop.set()

        async def watch(current: SubscriptionPlan = plan, sessions_stop: asyncio.Event = sessions_stop,
                        changed: list[SubscriptionPlan] = changed) -> None:
            while True:
                await asyncio.sleep(max(0.0, wait_s()))
                try:
                    new = await asyncio.to_thread(replan)
                except Exception as exc:  # noqa: BLE001 - a failed morning plan keeps yesterday's subscriptions
                    log.error("%s: the morning plan failed (%s); keeping the current subscriptions", source, exc)
                    continue
                if (new.covered, new.uncovered) != (current.covered, current.uncovered):
                    changed.append(new)
                    sessions_stop.set()
                    return
                log.info("%s: the morning plan is unchanged (%s)", source, new.summary())

        helpers = [asyncio.create_task(forward_stop()), asyncio.create_task(watch())]
        try:
            await run_sessions(collector.sessions, collector.outbox, sessions_stop)
        finally:
            for helper in helpers:
                helper.cancel()
        if stop.is_set() or not changed:
            return collector
        plan = changed[0]
        log.info("%s: the day's plan changed; resubscribing: %s", source, plan.summary())


def read_gaps(client: redis.Redis, stream: str, since: datetime | None = None) -> list[dict[str, str]]:
    """Recorded disconnected windows (oldest first), optionally only those ending after ``since``."""
    rows = [dict(fields) for _, fields in client.xrange(gaps_stream(stream))]
    if since is not None:
        rows = [r for r in rows if datetime.fromisoformat(r["end"]) >= since]
    return rows


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)
