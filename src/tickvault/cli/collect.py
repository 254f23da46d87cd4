"""`tickvault collect kis|kiwoom|pubsub|replay`: feed the stream."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import date
from pathlib import Path

import click

from ..core.config import Settings
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


def _run_ws(settings: Settings, source: str, build) -> None:
    """Run a WebSocket collector until SIGTERM/SIGINT, its counters on the metrics endpoint;
    exit 1 with the reason on a fatal error."""
    from ..services.collectors.base import FatalCollectorError
    from ..services.collectors.metrics import serve
    from ..services.collectors.ws import run_sessions

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(asyncio.get_running_loop(), stop)
        collector = build()
        server = serve({source: collector.stats}, settings.metrics_host, settings.collect_metrics_port)
        try:
            await run_sessions(collector.sessions, collector.outbox, stop)
        finally:
            log.info("collector stopped: %s", json.dumps(collector.stats.as_dict()))
            if server is not None:
                server.shutdown()

    try:
        asyncio.run(main())
    except FatalCollectorError as exc:
        fail(str(exc))


symbols_option = click.option("--symbols", "-s", multiple=True, help="Symbols, comma- or space-separated (repeatable).")
symbols_file_option = click.option("--symbols-file", type=click.Path(exists=True, dir_okay=False), help="File with one symbol per line.")


@click.group("collect")
def collect_cmd() -> None:
    """Feed the stream: broker WebSockets, the legacy pub/sub channel, or a lake replay."""


@collect_cmd.command("kis")
@symbols_option
@symbols_file_option
@click.pass_context
def kis_cmd(ctx: click.Context, symbols: tuple[str, ...], symbols_file: str | None) -> None:
    """KIS real-time trades (H0STCNT0) until SIGTERM.

    Needs TICKVAULT_KIS_APPKEY/APPSECRET; each app key holds
    TICKVAULT_KIS_WS_MAX_SUBSCRIPTIONS symbols, more symbols need TICKVAULT_KIS_WS_EXTRA_APPS.
    """
    from ..core.sharding import stream_client
    from ..services.collectors.base import FatalCollectorError
    from ..services.collectors.kis import plan_sessions
    from ..services.collectors.service import build_kis, kis_apps

    settings = get_settings(ctx)
    wanted = read_symbols(symbols, symbols_file)
    if not wanted:
        fail("no symbols: pass --symbols 005930,000660 or --symbols-file FILE")
    try:
        plan_sessions(wanted, len(kis_apps(settings)), settings.kis_ws_max_subscriptions)  # refuse before connecting
    except FatalCollectorError as exc:
        fail(str(exc))
    _run_ws(settings, "kis", lambda: build_kis(settings, wanted, stream_client(settings)))


@collect_cmd.command("kiwoom")
@symbols_option
@symbols_file_option
@click.pass_context
def kiwoom_cmd(ctx: click.Context, symbols: tuple[str, ...], symbols_file: str | None) -> None:
    """Kiwoom real-time trades (0B) until SIGTERM. Needs TICKVAULT_KIWOOM_APPKEY/SECRETKEY."""
    from ..core.sharding import stream_client
    from ..services.collectors.service import build_kiwoom

    settings = get_settings(ctx)
    wanted = read_symbols(symbols, symbols_file)
    if not wanted:
        fail("no symbols: pass --symbols 005930,000660 or --symbols-file FILE")
    if settings.kiwoom_appkey is None or settings.kiwoom_secretkey is None:
        fail("Kiwoom keys missing: set TICKVAULT_KIWOOM_APPKEY and TICKVAULT_KIWOOM_SECRETKEY")
    _run_ws(settings, "kiwoom", lambda: build_kiwoom(settings, wanted, stream_client(settings)))


@collect_cmd.command("pubsub")
@click.option("--channel", required=True, help="Redis pub/sub channel of the existing collector.")
@click.option("--mapping", "mapping_file", type=click.Path(exists=True, dir_okay=False), help="TOML/JSON file naming the message fields (docs/collectors.md).")
@click.pass_context
def pubsub_cmd(ctx: click.Context, channel: str, mapping_file: str | None) -> None:
    """Bridge a legacy Redis pub/sub channel into the stream until SIGTERM.

    Pub/sub keeps nothing: messages published while this bridge is down are lost
    (the windows are recorded in <stream>:gaps for recovery).
    """
    from ..core.stream import connect
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
                          listener=pubsub_client(settings.redis_dsn))
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

    from ..core.stream import Publisher, connect
    from ..core.wire import SOURCE_RE, kst_day_bounds
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
        start, end = kst_day_bounds(trading_day)
        table = lake.read_ticks(start, end, read_symbols(symbols, None) or None)
    finally:
        lake.close()
    if table.num_rows == 0:
        fail(f"the lake has no ticks for {trading_day}{' and these symbols' if symbols else ''}; nothing to replay")
    stop = threading.Event()
    install_signal_handlers(stop.set)
    published = replay(table, Publisher(connect(settings.redis_dsn), target), pace, relabel, stop)
    summary = {"date": trading_day.isoformat(), "stream": target, "ticks": table.num_rows, "published": published, "speed": speed,
               "complete": published == table.num_rows}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"replayed {published} of {table.num_rows} ticks of {trading_day} into {target}")
    sys.exit(0 if published == table.num_rows else 1)
