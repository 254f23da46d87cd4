"""`tickvault collect kis|kiwoom|pubsub|replay`: feed the stream."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import date, datetime
from pathlib import Path

import click

from ..core.config import Settings
from ..core.errors import TickvaultError
from ..core.wire import KST, VENUES, Venue
from . import fail, get_settings

log = logging.getLogger(__name__)


def read_symbols(symbols: tuple[str, ...], symbols_file: str | None) -> list[str]:
    """--symbols 005930,000660 (repeatable) and/or a file with one symbol per line (# comments)."""
    out: list[str] = []
    for chunk in symbols:
        out.extend(s.strip() for s in chunk.replace(",", " ").split() if s.strip())
    if symbols_file:
        for line in Path(symbols_file).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line)
    return list(dict.fromkeys(out))


def _stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _run_ws(settings: Settings, source: str, plan, build, replan) -> None:
    """Run a WebSocket collector until SIGTERM/SIGINT, its counters on the metrics endpoint,
    planning again each trading morning; exit 1 with the reason on a fatal error."""
    from ..services.collectors.base import CollectorStats, FatalCollectorError
    from ..services.collectors.metrics import serve
    from ..services.collectors.service import run_with_daily_plan

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(asyncio.get_running_loop(), stop)
        stats: dict[str, CollectorStats] = {}
        server = serve(stats, settings.metrics_host, settings.collect_metrics_port)
        try:
            await run_with_daily_plan(build, plan, replan, stop, stats, source)
        finally:
            if source in stats:
                log.info("collector stopped: %s", json.dumps(stats[source].as_dict()))
            if server is not None:
                server.shutdown()

    try:
        asyncio.run(main())
    except FatalCollectorError as exc:
        fail(str(exc))


symbols_option = click.option("--symbols", "-s", multiple=True, help="Symbols, comma- or space-separated (repeatable).")
symbols_file_option = click.option("--symbols-file", type=click.Path(exists=True, dir_okay=False), help="File with one symbol per line.")
venues_option = click.option("--venues", default="krx,nxt", show_default=True,
                             help="Venues to collect: krx, nxt or krx,nxt (NXT for the symbols the day's universe lists there).")
refresh_option = click.option("--refresh-universe", is_flag=True, help="Ask the broker for the day's NXT universe even if one is stored.")
plan_only_option = click.option("--plan-only", is_flag=True, help="Print the subscription plan (covered / not covered pairs) as JSON and exit.")


def parse_venues(text: str) -> list[Venue]:
    venues = [v.strip().upper() for v in text.split(",") if v.strip()]
    bad = [v for v in venues if v not in VENUES]
    if bad or not venues:
        fail(f"--venues: want krx, nxt or krx,nxt, got {text!r}")
    return venues  # type: ignore[return-value]  # checked against VENUES


def _wanted(symbols: tuple[str, ...], symbols_file: str | None) -> list[str]:
    wanted = read_symbols(symbols, symbols_file)
    if not wanted:
        fail("no symbols: pass --symbols 005930,000660 or --symbols-file FILE")
    return wanted


def _universe(settings: Settings, broker: str, wanted: list[str], venues: list[Venue], refresh: bool):
    """The day's universe for the plan (only needed when NXT is collected)."""
    from ..core.calendar import is_trading_day
    from ..services.collectors.universe import broker_lookup, day_universe

    paper = settings.kis_paper if broker == "kis" else "mockapi." in settings.kiwoom_ws_url
    if "NXT" not in venues or paper:
        return None  # no NXT wanted, or the account gets none (the plan says so)
    today = datetime.now(KST).date()
    if not is_trading_day(today):
        log.warning("%s is not a trading day: the universe is not refreshed (the stored one, if any, is used)", today)
    return day_universe(settings, today, wanted, broker_lookup(settings, broker), broker, refresh=refresh and is_trading_day(today))


def _print_plan(plan) -> None:
    click.echo(json.dumps(plan.as_dict(), ensure_ascii=False))


@click.group("collect")
def collect_cmd() -> None:
    """Feed the stream: broker WebSockets, the legacy pub/sub channel, or a lake replay."""


@collect_cmd.command("kis")
@symbols_option
@symbols_file_option
@venues_option
@refresh_option
@plan_only_option
@click.pass_context
def kis_cmd(ctx: click.Context, symbols: tuple[str, ...], symbols_file: str | None, venues: str, refresh_universe: bool,
            plan_only: bool) -> None:
    """KIS real-time trades until SIGTERM: H0STCNT0 (KRX) and H0NXCNT0 (NXT).

    Needs TICKVAULT_KIS_APPKEY/APPSECRET; each app key holds TICKVAULT_KIS_WS_MAX_SUBSCRIPTIONS
    registrations (an NXT symbol costs a second one), more need TICKVAULT_KIS_WS_EXTRA_APPS.
    Pairs that do not fit are named at start and counted (tickvault_collector_uncovered_pairs).
    """
    from ..core.sharding import stream_client
    from ..services.collectors.base import FatalCollectorError
    from ..services.collectors.service import build_kis, kis_apps, kis_plan

    settings = get_settings(ctx)
    wanted = _wanted(symbols, symbols_file)
    chosen = parse_venues(venues)
    def make_plan(refresh: bool):
        return kis_plan(settings, wanted, venues=chosen, universe=_universe(settings, "kis", wanted, chosen, refresh))

    try:
        kis_apps(settings)  # refuse missing keys before asking the broker for the universe
    except (FatalCollectorError, TickvaultError) as exc:
        fail(str(exc))
    _plan_and_run(settings, "kis", make_plan, refresh_universe, plan_only, lambda p: build_kis(settings, p, stream_client(settings)))


def _plan_and_run(settings, source: str, make_plan, refresh_universe: bool, plan_only: bool, build) -> None:
    """Make the subscription plan (a refused one is one line), print it with --plan-only, else run
    the collector with it; each morning's re-plan refreshes the universe."""
    from ..services.collectors.base import FatalCollectorError

    try:
        plan = make_plan(refresh_universe)
    except (FatalCollectorError, TickvaultError) as exc:
        fail(str(exc))
    if plan_only:
        _print_plan(plan)
        return
    _run_ws(settings, source, plan, build, lambda: make_plan(True))


@collect_cmd.command("kiwoom")
@symbols_option
@symbols_file_option
@venues_option
@refresh_option
@plan_only_option
@click.pass_context
def kiwoom_cmd(ctx: click.Context, symbols: tuple[str, ...], symbols_file: str | None, venues: str, refresh_universe: bool,
               plan_only: bool) -> None:
    """Kiwoom real-time trades (0B) until SIGTERM: items CODE (KRX) and CODE_NX (NXT).

    Needs TICKVAULT_KIWOOM_APPKEY/SECRETKEY.
    """
    from ..core.sharding import stream_client
    from ..services.collectors.service import build_kiwoom, kiwoom_plan

    settings = get_settings(ctx)
    wanted = _wanted(symbols, symbols_file)
    chosen = parse_venues(venues)
    if settings.kiwoom_appkey is None or settings.kiwoom_secretkey is None:
        fail("Kiwoom keys missing: set TICKVAULT_KIWOOM_APPKEY and TICKVAULT_KIWOOM_SECRETKEY")
    def make_plan(refresh: bool):
        return kiwoom_plan(settings, wanted, venues=chosen, universe=_universe(settings, "kiwoom", wanted, chosen, refresh))

    _plan_and_run(settings, "kiwoom", make_plan, refresh_universe, plan_only, lambda p: build_kiwoom(settings, p, stream_client(settings)))


@collect_cmd.command("universe")
@click.option("--broker", type=click.Choice(["kis", "kiwoom"]), required=True, help="Broker to ask.")
@symbols_option
@symbols_file_option
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="KST date to store it under (default: today).")
@click.pass_context
def universe_cmd(ctx: click.Context, broker: str, symbols: tuple[str, ...], symbols_file: str | None, day) -> None:
    """Refresh the day's (venue, symbol) universe from the broker into both stores (each trading morning)."""
    from ..services.collectors.universe import broker_lookup, refresh_universe

    settings = get_settings(ctx)
    wanted = _wanted(symbols, symbols_file)
    on = day.date() if day else datetime.now(KST).date()
    try:
        pairs = refresh_universe(settings, on, wanted, broker_lookup(settings, broker), broker)
    except TickvaultError as exc:
        fail(str(exc))
    nxt = sorted(s for v, s in pairs if v == "NXT" and s in set(wanted))
    click.echo(json.dumps({"date": on.isoformat(), "broker": broker, "symbols": len(wanted), "nxt": nxt}))


@collect_cmd.command("pubsub")
@click.option("--channel", required=True, help="Redis pub/sub channel of the existing collector.")
@click.option("--mapping", "mapping_file", type=click.Path(exists=True, dir_okay=False), help="TOML/JSON file naming the message fields (docs/collectors.md).")
@click.pass_context
def pubsub_cmd(ctx: click.Context, channel: str, mapping_file: str | None) -> None:
    """Bridge a legacy Redis pub/sub channel into the stream until SIGTERM.

    Pub/sub keeps nothing: messages published while this bridge is down are lost
    (the windows are recorded in <stream>:gaps for recovery).
    """
    from ..core.stream import FrameLimits, SideRetention, connect
    from ..services.archiver import install_signal_handlers
    from ..services.collectors.metrics import serve
    from ..services.collectors.pubsub import FieldMapping, PubSubBridge, pubsub_client

    settings = get_settings(ctx)
    try:
        mapping = FieldMapping.load(mapping_file)
    except ValueError as exc:
        fail(str(exc))
    client = connect(settings.redis_dsn)
    bridge = PubSubBridge(client, channel, settings.stream, mapping, settings.collect_reconnect_initial_s, settings.collect_reconnect_max_s,
                          listener=pubsub_client(settings.redis_dsn),
                          frames=FrameLimits(settings.frame_max_trades, settings.frame_max_bytes, settings.frame_max_delay_ms),
                          dlq_retention=SideRetention(settings.dlq_max_entries, settings.dlq_max_age_days),
                          gaps_retention=SideRetention(settings.gaps_max_entries, settings.gaps_max_age_days))
    install_signal_handlers(bridge.stop)
    server = serve({"pubsub": bridge.stats}, settings.metrics_host, settings.collect_metrics_port)
    try:
        bridge.run()
    finally:
        if server is not None:
            server.shutdown()
    log.info("pubsub bridge stopped: %s", json.dumps(bridge.stats.as_dict()))


@collect_cmd.command("replay")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="KST trading date to replay.")
@symbols_option
@click.option("--speed", default="1", show_default=True, help="1 = real time, 10 = ten times faster, max = no pacing.")
@click.option("--stream", "target", help="Target stream (default: <stream>:replay; never the live stream).")
@click.option("--source", "relabel", help="Replace each tick's source (e.g. 'replay'); default: keep the original.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def replay_cmd(ctx: click.Context, day, symbols: tuple[str, ...], speed: str, target: str | None, relabel: str | None, as_json: bool) -> None:
    """Re-publish one day of the lake into a separate stream, paced like the original."""
    import threading

    from ..core.calendar import trading_day_bounds
    from ..core.stream import FrameLimits, Publisher, connect
    from ..core.wire import SOURCE_RE
    from ..services.archiver import install_signal_handlers
    from ..services.collectors.replay import parse_speed, replay

    settings = get_settings(ctx)
    try:
        pace = parse_speed(speed)
    except ValueError as exc:
        fail(str(exc))
    target = target or f"{settings.stream}:replay"
    if target == settings.stream:
        fail(f"refusing to replay into the live stream {target}; pass another --stream")
    if relabel is not None and not SOURCE_RE.match(relabel):
        fail(f"--source must be a short lowercase name, got {relabel!r}")
    trading_day: date = day.date()
    from ..stores.lake import Lake

    lake = Lake(settings)
    try:
        start, end = trading_day_bounds(trading_day)
        table = lake.read_ticks(start, end, read_symbols(symbols, None) or None)
    finally:
        lake.close()
    if table.num_rows == 0:
        fail(f"the lake has no ticks for {trading_day}{' and these symbols' if symbols else ''}; nothing to replay")
    stop = threading.Event()
    install_signal_handlers(stop.set)
    frames = FrameLimits(settings.frame_max_trades, settings.frame_max_bytes)
    published = replay(table, Publisher(connect(settings.redis_dsn), target), pace, relabel, stop, frames=frames)
    summary = {"date": trading_day.isoformat(), "stream": target, "ticks": table.num_rows, "published": published, "speed": speed,
               "complete": published == table.num_rows}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"replayed {published} of {table.num_rows} ticks of {trading_day} into {target}")
    sys.exit(0 if published == table.num_rows else 1)
