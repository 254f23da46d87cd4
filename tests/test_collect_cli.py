"""`tickvault collect …` as the operator runs it: a real process against the stand-ins,
stopped with SIGTERM; configuration errors refused with one line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date, datetime

import pyarrow as pa
import pytest
from click.testing import CliRunner

from standins.kis_rest import KisRestStandin
from standins.kis_ws import KisWsStandin
from tickvault.cli import cli
from tickvault.core.wire import TICK_SCHEMA

APPKEY, APPSECRET = "PSkisAppKey0123456789abcdef", "kisAppSecretZYXWVUT9876543210+/="
SYMBOLS = ["005930", "000660"]


class LoopThread:
    """An asyncio loop in a thread, so a stand-in server runs beside a child process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 15.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(settings, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env.update({
        "TICKVAULT_REDIS_URL": settings.redis_dsn, "TICKVAULT_STREAM": settings.stream,
        "TICKVAULT_LAKE_DIR": str(settings.lake_dir), "TICKVAULT_BROKER_TOKEN_DIR": str(tmp_path / "tokens"),
        "TICKVAULT_COLLECT_METRICS_PORT": "0",
    })
    return env


def test_kis_collector_process_collects_and_stops_cleanly_on_sigterm(settings, rclient, tmp_path):
    """Both venues through the CLI: the day's universe is asked from the broker (one symbol on
    NXT), stored, and the collector subscribes H0STCNT0 for both symbols and H0NXCNT0 for one."""
    from helpers import stream_entries, venue_key_of
    from tickvault.core.wire import KST
    from tickvault.stores.hot import HotStore

    hot = HotStore(settings)
    hot.init()
    rest = KisRestStandin(pa.table([[] for _ in TICK_SCHEMA], schema=TICK_SCHEMA), date.today(), APPKEY, APPSECRET,
                          listed=SYMBOLS, nxt_listed=SYMBOLS[:1])
    rest_url = rest.start()
    loop = LoopThread()
    standin = KisWsStandin(SYMBOLS, nxt_symbols=SYMBOLS[:1], valid_key=lambda k: k.startswith("apv-"))
    ws_url = loop.run(standin.start())
    env = base_env(settings, tmp_path)
    metrics_port = free_port()
    env.update({"TICKVAULT_KIS_APPKEY": APPKEY, "TICKVAULT_KIS_APPSECRET": APPSECRET, "TICKVAULT_KIS_BASE_URL": rest_url,
                "TICKVAULT_KIS_WS_URL": ws_url, "TICKVAULT_COLLECT_METRICS_PORT": str(metrics_port),
                "TICKVAULT_PG_URL": settings.pg_url, "TICKVAULT_PG_SCHEMA": settings.pg_schema})
    proc = subprocess.Popen([sys.executable, "-m", "tickvault.cli", "--log-level", "DEBUG", "collect", "kis", "--symbols", ",".join(SYMBOLS),
                             "--refresh-universe"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        loop.run(standin.wait_subscribed(timeout=30), timeout=35)
        loop.run(standin.trades(30, per_frame=3))
        loop.run(standin.trades(10, per_frame=2, venue="NXT"))
        deadline = time.monotonic() + 15
        while rclient.xlen(settings.stream) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        loop.run(standin.stop())
        loop.close()
        rest.stop()
    assert proc.returncode == 0, err
    keys = [venue_key_of(f) for f in stream_entries(rclient, settings.stream)]
    assert len(keys) == len(set(keys)) == 40 and sorted(keys) == sorted(t.venue_key for t in standin.sent)
    assert sum(1 for k in keys if k[0] == "NXT") == 10
    assert standin.unsubscribes == len(SYMBOLS) + 1
    assert sorted(hot.read_universe(datetime.now(KST).date())) == [("KRX", "000660"), ("KRX", "005930"), ("NXT", "005930")]
    hot.close()
    assert "KRX 2 covered; NXT 1 covered" in err
    approval = [m.split('"approval_key": "')[1].split('"')[0] for m in standin.received if "approval_key" in m]
    assert approval and all(secret not in err + out for secret in [APPKEY, APPSECRET, *approval])
    assert '"ticks": 40' in err  # the final counters line
    for series in ('tickvault_collector_published_total{source="kis"} 40.0', 'tickvault_collector_connected{source="kis"} 1.0',
                   'tickvault_collector_gaps_total{source="kis"} 0.0', "tickvault_collector_last_frame_timestamp_seconds{source=\"kis\"}"):
        assert series in scraped, series


@pytest.mark.parametrize(("args", "extra_env", "message"), [
    (["collect", "kis", "--symbols", "005930"], {}, "KIS keys missing: set TICKVAULT_KIS_APPKEY"),
    (["collect", "kis"], {}, "no symbols"),
    (["collect", "kis", "--symbols", "005930", "--venues", "krx,al"], {"TICKVAULT_KIS_APPKEY": "k", "TICKVAULT_KIS_APPSECRET": "s"},
     "--venues: want krx, nxt or krx,nxt"),
    (["collect", "kis", "--symbols", "005930", "--venues", "nxt", "--plan-only"],
     {"TICKVAULT_KIS_APPKEY": "k", "TICKVAULT_KIS_APPSECRET": "s", "TICKVAULT_KIS_PAPER": "true"}, "kis: nothing to subscribe (KIS serves no NXT feed"),
    (["collect", "kiwoom", "--symbols", "005930"], {}, "Kiwoom keys missing"),
    (["collect", "replay", "--date", "2026-11-20", "--speed", "0"], {}, "speed must be > 0"),
])
def test_configuration_errors_are_one_line(settings, tmp_path, args, extra_env, message):
    env = base_env(settings, tmp_path)
    env.update(extra_env)
    result = CliRunner().invoke(cli, args, env={**{k: None for k in os.environ if k.startswith("TICKVAULT_")}, **env})
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_every_collect_command_has_help():
    for name in ("kis", "kiwoom", "pubsub", "replay"):
        result = CliRunner().invoke(cli, ["collect", name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_collector_counters_as_prometheus_series():
    from prometheus_client import CollectorRegistry, generate_latest

    from tickvault.services.collectors.base import CollectorStats
    from tickvault.services.collectors.metrics import CollectorMetrics

    stats = CollectorStats(frames=7, ticks=12, published=12, reconnects=1, parse_errors=2, gaps=1, connected=True, last_frame_at=1.5e9)
    registry = CollectorRegistry()
    registry.register(CollectorMetrics({"kis": stats}))
    text = generate_latest(registry).decode()
    for line in ('tickvault_collector_frames_total{source="kis"} 7.0', 'tickvault_collector_reconnects_total{source="kis"} 1.0',
                 'tickvault_collector_parse_errors_total{source="kis"} 2.0', 'tickvault_collector_connected{source="kis"} 1.0'):
        assert line in text
    stats.ticks += 3
    assert 'tickvault_collector_ticks_total{source="kis"} 15.0' in generate_latest(registry).decode()


def test_a_taken_metrics_port_never_stops_a_collector(caplog) -> None:
    from tickvault.services.collectors.base import CollectorStats
    from tickvault.services.collectors.metrics import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert serve({"kis": CollectorStats()}, "127.0.0.1", taken.getsockname()[1]) is None
    assert "TICKVAULT_COLLECT_METRICS_PORT" in caplog.text
    assert serve({"kis": CollectorStats()}, "127.0.0.1", 0) is None  # 0: no endpoint



def test_plan_only_reports_coverage_from_the_stored_universe(settings, tmp_path):
    import json
    from datetime import datetime

    from tickvault.core.wire import KST
    from tickvault.stores.hot import HotStore
    from tickvault.stores.lake import Lake

    today = datetime.now(KST).date()
    hot = HotStore(settings)
    hot.init()
    hot.write_universe(today, [("KRX", s) for s in SYMBOLS] + [("NXT", SYMBOLS[0]), ("NXT", SYMBOLS[1])], "kis")
    hot.close()
    Lake(settings).init()
    env = base_env(settings, tmp_path)
    env.update({"TICKVAULT_PG_URL": settings.pg_url, "TICKVAULT_PG_SCHEMA": settings.pg_schema, "TICKVAULT_KIS_APPKEY": "k",
                "TICKVAULT_KIS_APPSECRET": "s", "TICKVAULT_KIS_WS_MAX_SUBSCRIPTIONS": "3"})
    result = CliRunner().invoke(cli, ["collect", "kis", "--symbols", ",".join(SYMBOLS), "--plan-only"],
                                env={**{k: None for k in os.environ if k.startswith("TICKVAULT_")}, **env})
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output.strip().splitlines()[-1])
    assert plan["covered"] == [f"KRX:{s}" for s in SYMBOLS] + [f"NXT:{SYMBOLS[0]}"]
    assert [u["pair"] for u in plan["uncovered"]] == [f"NXT:{SYMBOLS[1]}"] and "no room" in plan["uncovered"][0]["reason"]
