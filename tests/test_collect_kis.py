"""KIS H0STCNT0 collector over a real WebSocket against the loopback stand-in, approval key
from the KIS REST stand-in, ticks into the real Redis stream."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import redis

from helpers import in_a_gap, key_of, stream_entries, until
from standins.kis_rest import KisRestStandin
from standins.kis_ws import KisWsStandin, Trade, data_frame
from tickvault.core.config import Settings
from tickvault.core.wire import KST, TICK_SCHEMA, UTC
from tickvault.services.brokers.kis import KisClient
from tickvault.services.collectors.base import FatalCollectorError
from tickvault.services.collectors.kis import FrameError, aes_encrypt, parse_frame
from tickvault.services.collectors.service import build_kis, kis_plan, read_gaps
from tickvault.services.collectors.ws import run_sessions

DATA = Path(__file__).parent / "data"
SYMBOLS = ["005930", "000660", "035720"]
APPKEY, APPSECRET = "PSkisAppKey0123456789abcdef", "kisAppSecretZYXWVUT9876543210+/="


@pytest.fixture
def kis_rest(tmp_path):
    standin = KisRestStandin(pa.table([[] for _ in TICK_SCHEMA], schema=TICK_SCHEMA), date.today(), APPKEY, APPSECRET)
    url = standin.start()
    yield standin, url
    standin.stop()


def krx_plan(s: Settings, symbols, keys: int = 1):
    return kis_plan(s, symbols, venues=["KRX"], app_count=keys)


def collector_settings(settings: Settings, tmp_path: Path, rest_url: str, ws_url: str, **extra) -> Settings:
    values = {
        "kis_appkey": APPKEY, "kis_appsecret": APPSECRET, "kis_base_url": rest_url, "kis_ws_url": ws_url,
        "broker_token_dir": tmp_path / "tokens", "collect_stall_s": 3.0, "collect_session_hours": "00:00-24:00",
        "collect_reconnect_initial_s": 0.05, "collect_reconnect_max_s": 0.2,
    }
    values.update(extra)
    return Settings(**{**settings.model_dump(), **values})


# ---------------------------------------------------------------- parser


def test_real_captured_frame_parses_all_46_fields():
    frame = (DATA / "kis_h0stcnt0_frame.txt").read_text().strip()
    received = datetime(2023, 3, 24, 2, 26, 16, 500000, tzinfo=UTC)
    parsed = parse_frame(frame, {}, received)
    assert parsed.rejected == []
    assert parsed.ticks == [{
        "v": "1", "venue": "KRX", "symbol": "005930", "ts": "2023-03-24T11:26:16+09:00", "price": "62700", "volume": "125",
        "cum_volume": "9694968", "side": "B", "source": "kis", "received_at": received.isoformat(),
    }]


def test_multi_record_and_encrypted_frames_parse_every_record():
    now = datetime.now(KST).replace(microsecond=0)
    trades = [Trade("005930", now, 70000 + i, 10 + i, 1000 + 11 * i, code) for i, code in enumerate("153")]
    cipher = ("k" * 32, "i" * 16)
    for frame in (data_frame(trades), data_frame(trades, cipher)):
        parsed = parse_frame(frame, {"H0STCNT0": cipher}, datetime.now(UTC))
        assert [(t["price"], t["volume"], t["cum_volume"], t["side"]) for t in parsed.ticks] == [
            ("70000", "10", "1000", "B"), ("70001", "11", "1011", "S"), ("70002", "12", "1022", ""),
        ]
        assert {t["ts"] for t in parsed.ticks} == {now.isoformat()}


@pytest.mark.parametrize(("frame", "reason"), [
    ("0|H0STCNT0|002|" + "^".join(["x"] * 60), "truncated"),
    ("0|H0STCNT0|001|005930^112616^62700", "truncated"),
    ("0|H0STCNT0", "4 '|'-separated parts"),
    ("7|H0STCNT0|001|a", "encryption flag"),
    ("0|H0STASP0|001|a", "unexpected tr_id"),
    ("1|H0STCNT0|001|" + aes_encrypt("k" * 32, "i" * 16, "abc"), "before the subscribe ack"),
])
def test_unreadable_frames_raise_with_a_reason(frame, reason):
    with pytest.raises(FrameError, match=reason):
        parse_frame(frame, {}, datetime.now(UTC))


def test_bad_record_is_rejected_alone():
    now = datetime.now(KST).replace(microsecond=0)
    good = Trade("005930", now, 70000, 5, 500, "1")
    bad = Trade("005930", now, 70000, 0, 500, "1")  # zero volume
    parsed = parse_frame(data_frame([good, bad]), {}, datetime.now(UTC))
    assert len(parsed.ticks) == 1 and len(parsed.rejected) == 1
    assert "record 2 of 2" in parsed.rejected[0][1] and "volume" in parsed.rejected[0][1]


def test_symbols_beyond_the_keys_are_named_and_counted_not_dropped(settings):
    symbols = [f"{i:06d}" for i in range(81)]
    s = Settings(**{**settings.model_dump(), "kis_appkey": APPKEY, "kis_appsecret": APPSECRET, "kis_ws_max_subscriptions": 40})
    plan = krx_plan(s, symbols, keys=3)
    assert plan.sessions == [[("KRX", x) for x in symbols[:40]], [("KRX", x) for x in symbols[40:80]], [("KRX", "000080")]]
    assert plan.uncovered == []
    short = krx_plan(s, symbols, keys=2)
    assert short.covered == [("KRX", x) for x in symbols[:80]]
    assert [pair for pair, _ in short.uncovered] == [("KRX", "000080")]
    assert "no room: 2 session(s) x 40" in short.uncovered[0][1] and "TICKVAULT_KIS_WS_EXTRA_APPS" in short.uncovered[0][1]
    assert "KRX 80 covered, 1 NOT covered" in short.summary()


# ---------------------------------------------------------------- end to end


def test_collector_survives_disconnects_stalls_and_garbage(settings, rclient, kis_rest, tmp_path, caplog):
    """Multi-record and encrypted frames, PINGPONG, a server close, an abrupt drop and a stall:
    every delivered trade is in the stream exactly once; every trade made while the
    collector could not receive lies inside a recorded gap; bad frames are in the DLQ."""
    caplog.set_level(logging.DEBUG)
    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS, valid_key=lambda k: k.startswith("apv-"))

    async def scenario():
        ws_url = await standin.start()
        s = collector_settings(settings, tmp_path, rest_url, ws_url, collect_stall_s=1.5)
        kis = KisClient(s)
        collector = build_kis(s, krx_plan(s, SYMBOLS), rclient, approval_keys=[kis.approval_key])
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_subscribed()
        await standin.trades(30, per_frame=4)
        await standin.pingpong()
        await standin.trades(12, per_frame=2, encrypt=True)
        await until(lambda: standin.pongs == 1, what="PINGPONG echo")
        await until(lambda: collector.stats.ticks == len(standin.sent), what="first ticks")

        seen = standin.connections
        await standin.drop()  # server-initiated close mid-stream
        await standin.trades(9)  # the exchange keeps trading while nobody listens
        await standin.wait_subscribed(newer_than=seen)
        await standin.trades(15, per_frame=3)

        seen = standin.connections
        await standin.drop(abrupt=True)
        await standin.trades(6)
        await standin.wait_subscribed(newer_than=seen)
        await standin.trades(6)

        seen = standin.connections
        standin.stall(4.0)  # the acceptance's 60 s stall, scaled down with the watchdog (1.5 s)
        await standin.trades(9)
        await standin.wait_subscribed(newer_than=seen)
        await standin.trades(12, per_frame=3)

        await standin.send_raw("0|H0STCNT0|002|005930^112616^62700")  # truncated
        await standin.send_raw("{not json")
        await until(lambda: collector.stats.ticks == len(standin.sent) and collector.stats.parse_errors == 2, what="all ticks")
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())

    entries = stream_entries(rclient, settings.stream)
    keys = [key_of(f) for f in entries]
    assert len(keys) == len(set(keys)), "a tick was published twice"
    assert sorted(keys) == sorted(t.key for t in standin.sent)
    assert all(f["source"] == "kis" and f["received_at"] for f in entries)
    assert len(standin.lost) == 9 + 6 + 9
    gaps = read_gaps(rclient, settings.stream)
    assert len(gaps) == 3 and all(g["source"] == "kis" for g in gaps)
    assert "stall" in gaps[2]["reason"]
    missing = [t for t in standin.lost if not in_a_gap(t, gaps)]
    assert missing == [], f"lost trades outside any recorded gap: {missing}"
    assert collector.stats.reconnects == 3 and collector.stats.frames > 0

    dlq = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert {d["stage"] for d in dlq} == {"collect-kis"}
    assert any("truncated" in d["reason"] and d["f.raw"].startswith("0|H0STCNT0|002|") for d in dlq)
    assert any("unreadable control frame" in d["reason"] for d in dlq)
    assert standin.unsubscribes == len(SYMBOLS)  # clean stop says goodbye

    secrets = [APPSECRET, APPKEY] + [m.split('"approval_key": "')[1].split('"')[0] for m in standin.received if "approval_key" in m]
    logged = caplog.text
    assert all(secret not in logged for secret in secrets)
    assert "recorded in" in logged  # the gaps are in the log too


def test_short_silence_below_the_watchdog_keeps_the_session(settings, rclient, kis_rest, tmp_path):
    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS[:1], valid_key=lambda k: k.startswith("apv-"))

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), collect_stall_s=3.0)
        collector = build_kis(s, krx_plan(s, SYMBOLS[:1]), rclient, approval_keys=[KisClient(s).approval_key])
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_subscribed()
        standin.stall(0.8)
        await asyncio.sleep(1.0)
        await standin.trades(3)
        await until(lambda: collector.stats.ticks == 3)
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())
    assert standin.connections == 1 and collector.stats.reconnects == 0
    assert read_gaps(rclient, settings.stream) == []


def test_watchdog_sleeps_outside_the_session(settings, rclient, kis_rest, tmp_path):
    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS[:1])
    now = datetime.now(KST)
    closed = f"{(now + timedelta(hours=2)).strftime('%H:%M')}-{(now + timedelta(hours=3)).strftime('%H:%M')}"

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), collect_stall_s=0.2, collect_session_hours=closed)
        collector = build_kis(s, krx_plan(s, SYMBOLS[:1]), rclient, approval_keys=[lambda: "apv-x"])
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_subscribed()
        await asyncio.sleep(0.8)
        stop.set()
        await task
        await standin.stop()

    asyncio.run(scenario())
    assert standin.connections == 1


def test_over_limit_subscription_is_refused_with_a_clear_error(settings, rclient, kis_rest, tmp_path):
    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS, max_subscriptions=2)

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), kis_ws_max_subscriptions=3)
        collector = build_kis(s, krx_plan(s, SYMBOLS), rclient, approval_keys=[lambda: "apv-x"])
        try:
            await asyncio.wait_for(run_sessions(collector.sessions, collector.outbox, asyncio.Event()), timeout=10)
        finally:
            await standin.stop()

    with pytest.raises(FatalCollectorError, match=r"MAX SUBSCRIBE OVER.*TICKVAULT_KIS_WS_MAX_SUBSCRIPTIONS"):
        asyncio.run(scenario())
    assert standin.refused == [("035720", "OPSP0008")]


def test_more_symbols_use_more_app_keys_one_session_each(settings, rclient, kis_rest, tmp_path):
    _rest, rest_url = kis_rest
    symbols = SYMBOLS + ["051910", "207940"]
    standin = KisWsStandin(symbols, max_subscriptions=2)

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), kis_ws_max_subscriptions=2)
        keys = [lambda n=n: f"apv-{n}" for n in range(3)]
        collector = build_kis(s, krx_plan(s, symbols, keys=3), rclient, approval_keys=keys)
        assert [len(x.pairs) for x in collector.sessions] == [2, 2, 1]
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await until(lambda: sum(len(c.subs) for c in standin.conns if not c.closed) == 5, what="5 subscriptions")
        await standin.trades(20, per_frame=2)
        await until(lambda: collector.stats.ticks == 20)
        stop.set()
        await task
        await standin.stop()

    asyncio.run(scenario())
    assert standin.connections == 3 and standin.refused == []
    keys = sorted(key_of(f) for f in stream_entries(rclient, settings.stream))
    assert keys == sorted(t.key for t in standin.sent) and len(keys) == 20
    approval = {m.split('"approval_key": "')[1].split('"')[0] for m in standin.received if "approval_key" in m}
    assert approval == {"apv-0", "apv-1", "apv-2"}


def test_refused_approval_key_is_replaced_by_a_new_one(settings, rclient, kis_rest, tmp_path):
    from tickvault.services.collectors.service import kis_approval_keys

    rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS[:2], valid_key=lambda k: k.startswith("apv-") and not k.startswith("apv-0001"))

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())
        collector = build_kis(s, krx_plan(s, SYMBOLS[:2]), rclient, approval_keys=kis_approval_keys(s))
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_subscribed()
        await standin.trades(4)
        await until(lambda: collector.stats.ticks == 4)
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())
    assert rest.approval_issues == 2 and collector.stats.reconnects == 1
    assert read_gaps(rclient, settings.stream) == []  # never subscribed before: no window was being missed


class RedisProxy:
    """A TCP forwarder to the shared Redis that the test can take down and bring back
    (the shared server itself must never be stopped)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.pipes: list[asyncio.StreamWriter] = []

    async def up(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def down(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        for writer in self.pipes:
            writer.transport.abort()
        self.pipes = []

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.pipes += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        except asyncio.CancelledError:  # the test's loop is shutting down
            pass


def test_redis_outage_keeps_the_session_and_loses_nothing(settings, rclient, kis_rest, tmp_path):
    from urllib.parse import urlsplit

    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS)
    target = urlsplit(settings.redis_dsn)
    proxy = RedisProxy(target.hostname or "127.0.0.1", target.port or 6379)

    async def scenario():
        port = await proxy.up()
        via_proxy = redis.Redis(host="127.0.0.1", port=port, db=int((target.path or "/0").lstrip("/") or 0),
                                decode_responses=True, socket_timeout=2, socket_connect_timeout=1)
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), retry_max_s=0.3, collect_stall_s=10.0)
        collector = build_kis(s, krx_plan(s, SYMBOLS), via_proxy, approval_keys=[lambda: "apv-x"])
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_subscribed()
        await standin.trades(9, per_frame=3)
        await until(lambda: collector.stats.published == 9, what="first ticks published")
        await proxy.down()
        for _ in range(5):  # the broker keeps streaming and pinging while Redis is away
            await standin.trades(6, per_frame=2)
            await standin.pingpong()
            await asyncio.sleep(0.2)
        assert collector.stats.published == 9 and collector.stats.ticks == 39
        await proxy.up()
        await until(lambda: collector.stats.published == 39, timeout=15, what="backlog written after Redis is back")
        stop.set()
        await task
        await standin.stop()
        await proxy.down()
        via_proxy.close()
        return collector

    collector = asyncio.run(scenario())
    keys = [key_of(f) for f in stream_entries(rclient, settings.stream)]
    assert sorted(keys) == sorted(t.key for t in standin.sent) and len(keys) == 39
    assert collector.stats.reconnects == 0 and standin.connections == 1 and standin.pongs == 5


def test_wrong_app_secret_retries_and_never_logs_it(settings, rclient, kis_rest, tmp_path, caplog):
    from tickvault.services.collectors.service import kis_approval_keys

    caplog.set_level(logging.DEBUG)
    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS[:1])
    wrong = "wrongSecret-4711-do-not-log"

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), kis_appsecret=wrong)
        collector = build_kis(s, krx_plan(s, SYMBOLS[:1]), rclient, approval_keys=kis_approval_keys(s))
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await until(lambda: collector.stats.reconnects >= 2, what="retries")
        stop.set()
        await task
        await standin.stop()

    asyncio.run(scenario())
    assert "broker credential" in caplog.text and "approval key not issued" in caplog.text
    assert wrong not in caplog.text and APPKEY not in caplog.text
    assert not any(m for m in standin.received if "approval_key" in m)  # never subscribed without a key


# ---------------------------------------------------------------- two venues (H0STCNT0 + H0NXCNT0)


def test_nxt_frame_parses_with_venue_nxt_and_its_own_cum_volume():
    now = datetime.now(KST).replace(microsecond=0)
    krx = Trade("005930", now, 70000, 10, 1000, "1")
    nxt = Trade("005930", now, 70000, 10, 1000, "5", venue="NXT")  # same second, same cum_volume: another trade
    parsed = [parse_frame(data_frame([t]), {}, datetime.now(UTC)).ticks[0] for t in (krx, nxt)]
    assert [(t["venue"], t["symbol"], t["cum_volume"], t["side"]) for t in parsed] == [("KRX", "005930", "1000", "B"), ("NXT", "005930", "1000", "S")]
    assert data_frame([nxt]).startswith("0|H0NXCNT0|001|")
    with pytest.raises(FrameError, match="H0STCNT0 and H0NXCNT0 only"):
        parse_frame("0|H0UNCNT0|001|" + "^".join(["x"] * 46), {}, datetime.now(UTC))  # the combined feed is not a venue


def test_plan_puts_krx_first_then_the_universe_nxt_pairs_and_names_the_rest(settings):
    s = Settings(**{**settings.model_dump(), "kis_appkey": APPKEY, "kis_appsecret": APPSECRET, "kis_ws_max_subscriptions": 2})
    universe = [("KRX", x) for x in SYMBOLS] + [("NXT", "005930"), ("NXT", "000660")]
    plan = kis_plan(s, SYMBOLS + ["051910"], universe=universe, app_count=3)
    assert plan.sessions == [[("KRX", "005930"), ("KRX", "000660")], [("KRX", "035720"), ("KRX", "051910")],
                             [("NXT", "005930"), ("NXT", "000660")]]
    assert [pair for pair, _ in plan.uncovered] == [("NXT", "051910")]  # the universe does not know it
    assert "not in the day's universe" in plan.uncovered[0][1]
    short = kis_plan(s, SYMBOLS, universe=universe, app_count=2)
    assert [pair for pair, _ in short.uncovered] == [("NXT", "000660")] and "no room" in short.uncovered[0][1]
    paper = kis_plan(s.model_copy(update={"kis_paper": True}), SYMBOLS, universe=universe, app_count=3)
    assert paper.covered == [("KRX", x) for x in SYMBOLS]
    assert {pair for pair, _ in paper.uncovered} == {("NXT", "005930"), ("NXT", "000660")}
    assert all("paper accounts" in why for _, why in paper.uncovered)
    assert kis_plan(s, SYMBOLS, venues=["KRX"], universe=universe, app_count=3).uncovered == []
    with pytest.raises(FatalCollectorError, match=r"nothing to subscribe.*universe"):
        kis_plan(s, SYMBOLS, venues=["NXT"], universe=None, app_count=3)


def test_collector_delivers_both_venues_once_and_records_gaps_per_venue(settings, rclient, kis_rest, tmp_path):
    from helpers import venue_key_of

    _rest, rest_url = kis_rest
    nxt = SYMBOLS[:2]
    standin = KisWsStandin(SYMBOLS, nxt_symbols=nxt, max_subscriptions=3)
    universe = [("KRX", x) for x in SYMBOLS] + [("NXT", x) for x in nxt]

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), kis_ws_max_subscriptions=3)
        plan = kis_plan(s, SYMBOLS, universe=universe, app_count=2)
        collector = build_kis(s, plan, rclient, approval_keys=[lambda: "apv-a", lambda: "apv-b"])
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await until(lambda: len(standin.all_subscriptions()) == 5, what="5 registrations over 2 sessions")
        assert standin.all_subscriptions() == {("H0STCNT0", x) for x in SYMBOLS} | {("H0NXCNT0", x) for x in nxt}
        await standin.trades(12, per_frame=2, venue="KRX")
        await standin.trades(10, per_frame=3, venue="NXT")
        await until(lambda: collector.stats.ticks == 22, what="both venues' ticks")
        seen = standin.connections
        await standin.drop()
        await standin.trades(4, venue="NXT")  # nobody listens
        await standin.trades(3, venue="KRX")
        await until(lambda: sum(1 for c in standin.conns[seen:] if c.live() and c.subs) == 2 and len(standin.all_subscriptions()) == 5,
                    what="both sessions back")
        await until(lambda: all(s.ready for s in collector.sessions), what="sessions ready")
        await standin.trades(6, venue="NXT")
        await standin.trades(6, venue="KRX")
        await until(lambda: collector.stats.ticks == len(standin.sent), what="all ticks")
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())
    keys = [venue_key_of(f) for f in stream_entries(rclient, settings.stream)]
    assert len(keys) == len(set(keys)) == len(standin.sent) == 34
    assert sorted(keys) == sorted(t.venue_key for t in standin.sent)
    assert {k[0] for k in keys} == {"KRX", "NXT"}
    assert collector.stats.ticks_by_venue == {"KRX": sum(1 for k in keys if k[0] == "KRX"), "NXT": sum(1 for k in keys if k[0] == "NXT")}
    from prometheus_client import CollectorRegistry, generate_latest

    from tickvault.services.collectors.metrics import CollectorMetrics

    registry = CollectorRegistry()
    registry.register(CollectorMetrics({"kis": collector.stats}))
    scraped = generate_latest(registry).decode()
    assert f'tickvault_collector_venue_ticks_total{{source="kis",venue="NXT"}} {collector.stats.ticks_by_venue["NXT"]}.0' in scraped
    gaps = read_gaps(rclient, settings.stream)
    assert sorted((g["venue"], g["symbols"]) for g in gaps) == [("KRX", ",".join(SYMBOLS)), ("NXT", ",".join(nxt))]
    assert len(standin.lost) == 7 and all(in_a_gap(t, gaps) for t in standin.lost)
    krx_only_gaps = [g for g in gaps if g["venue"] == "KRX"]
    assert not any(in_a_gap(t, krx_only_gaps) for t in standin.lost if t.venue == "NXT")  # a gap names its venue
    assert collector.stats.uncovered == 0


def test_paper_server_refuses_nxt_and_the_refusal_is_counted(settings, rclient, kis_rest, tmp_path, caplog):
    """A paper account gets no NXT feed: a plan that asks anyway (wrong kis_paper) sees each
    H0NXCNT0 registration refused; KRX keeps flowing and the refusals are counted."""
    from tickvault.services.collectors.metrics import CollectorMetrics

    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS[:2], nxt_symbols=SYMBOLS[:2], paper=True)
    universe = [("KRX", x) for x in SYMBOLS[:2]] + [("NXT", x) for x in SYMBOLS[:2]]

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())
        collector = build_kis(s, kis_plan(s, SYMBOLS[:2], universe=universe), rclient, approval_keys=[lambda: "apv-x"])
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await until(lambda: collector.sessions[0].ready, what="session ready")
        await standin.trades(4)
        await until(lambda: collector.stats.ticks == 4)
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())
    assert sorted(standin.refused) == [("000660", "OPSP0009"), ("005930", "OPSP0009")]
    assert collector.stats.uncovered == 2 and collector.stats.reconnects == 0
    assert "refused subscription of NXT 005930" in caplog.text
    metrics = {m.name: m for m in CollectorMetrics({"kis": collector.stats}).collect()}
    assert metrics["tickvault_collector_uncovered_pairs"].samples[0].value == 2.0
    from helpers import venue_key_of

    keys = [venue_key_of(f) for f in stream_entries(rclient, settings.stream)]
    assert sorted(keys) == sorted(t.venue_key for t in standin.sent) and {k[0] for k in keys} == {"KRX"}


def test_watchdog_is_armed_by_the_session_table_per_venue():
    from tickvault.core.config import MARKET_HOURS, parse_session_hours
    from tickvault.services.collectors.base import SessionClock

    def at(hh: int, mm: int, ss: int = 0) -> datetime:
        return datetime(2026, 11, 20, hh, mm, ss, tzinfo=KST)  # a Friday, a trading day for both venues

    nxt_only, both = SessionClock(MARKET_HOURS, ["NXT"]), SessionClock(MARKET_HOURS, ["KRX", "NXT"])
    assert nxt_only.in_session(at(19, 30)) and both.in_session(at(19, 30))  # NXT after-market
    assert not nxt_only.in_session(at(8, 55)) and not nxt_only.in_session(at(15, 30))  # NXT's quiet windows
    assert nxt_only.in_session(at(8, 10)) and nxt_only.in_session(at(10, 0))
    assert both.in_session(at(10, 0)) and not both.in_session(at(21, 0))
    assert not both.in_session(datetime(2026, 11, 21, 10, 0, tzinfo=KST))  # Saturday
    always = SessionClock(parse_session_hours("00:00-24:00"), ["NXT"])
    assert always.in_session(at(8, 55)) and always.in_session(at(23, 0))


def test_morning_plan_resubscribes_when_the_universe_changes(settings, rclient, kis_rest, tmp_path):
    """Each trading morning the plan is made again; a changed plan (005930 now on NXT) stops the
    sessions cleanly (no gap) and subscribes the new pairs; an unchanged one leaves them alone."""
    from helpers import venue_key_of
    from tickvault.services.collectors.service import run_with_daily_plan

    _rest, rest_url = kis_rest
    standin = KisWsStandin(SYMBOLS[:2], nxt_symbols=SYMBOLS[:1])
    krx_only = [("KRX", x) for x in SYMBOLS[:2]]
    plans = [krx_only, krx_only + [("NXT", SYMBOLS[0])]]
    waits = iter([0.2, 0.2, 3600.0])
    replans = []

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())

        def replan():
            replans.append(1)
            return kis_plan(s, SYMBOLS[:2], universe=plans[min(len(replans) - 1, 1)], app_count=1)

        stats = {}
        stop = asyncio.Event()
        first = kis_plan(s, SYMBOLS[:2], universe=krx_only, app_count=1)
        task = asyncio.create_task(run_with_daily_plan(
            lambda p: build_kis(s, p, rclient, approval_keys=[lambda: "apv-x"]), first, replan, stop, stats, "kis", lambda: next(waits)))
        await standin.wait_subscribed(SYMBOLS[:2])
        await standin.trades(4)
        await until(lambda: stats["kis"].ticks == 4, what="KRX ticks")
        await standin.wait_subscribed(list(standin.cum), newer_than=1)  # the second plan brought NXT
        await until(lambda: len(replans) == 2, what="two morning plans")
        await asyncio.sleep(0.1)
        await standin.trades(4)
        await standin.trades(3, venue="NXT")
        await until(lambda: stats["kis"].ticks == 7, what="both venues after the re-plan")
        stop.set()
        await task
        await standin.stop()

    asyncio.run(scenario())
    assert len(replans) == 2 and standin.connections == 2  # the unchanged first re-plan kept the session
    keys = [venue_key_of(f) for f in stream_entries(rclient, settings.stream)]
    assert sorted(keys) == sorted(t.venue_key for t in standin.sent) and len(keys) == 11
    assert read_gaps(rclient, settings.stream) == []  # a clean resubscription is not a gap


def test_morning_plan_is_due_before_the_next_trading_days_first_session():
    from tickvault.core.calendar import collect_window
    from tickvault.services.collectors.service import REPLAN_LEAD, seconds_to_replan

    friday_noon = datetime(2026, 11, 20, 12, 0, tzinfo=KST)
    due = friday_noon + timedelta(seconds=seconds_to_replan(friday_noon))
    monday_open = collect_window(date(2026, 11, 23))[0]
    assert due == monday_open - REPLAN_LEAD and due.date() == date(2026, 11, 23) and due.hour < 8
    early_monday = datetime(2026, 11, 23, 3, 0, tzinfo=KST)  # before Monday's plan time: Monday itself
    assert early_monday + timedelta(seconds=seconds_to_replan(early_monday)) == due
