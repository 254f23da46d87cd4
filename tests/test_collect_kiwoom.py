"""Kiwoom 0B collector over a real WebSocket against the loopback stand-in, token from the
Kiwoom REST stand-in, ticks into the real Redis stream."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from helpers import in_a_gap, key_of, stream_entries, until
from standins.kiwoom_rest import KiwoomRestStandin
from standins.kiwoom_ws import KiwoomWsStandin
from tickvault.core.config import Settings
from tickvault.core.wire import TICK_SCHEMA, UTC, InvalidTick
from tickvault.services.brokers.kiwoom import KiwoomClient
from tickvault.services.collectors.base import FatalCollectorError
from tickvault.services.collectors.kiwoom import real_to_fields
from tickvault.services.collectors.service import build_kiwoom, kiwoom_plan, read_gaps
from tickvault.services.collectors.ws import run_sessions

SYMBOLS = ["005930", "000660", "035720"]
APPKEY, SECRETKEY = "kwAppKey_4f1d2c3b", "kwSecretKey_9a8b7c6d"


@pytest.fixture
def kiwoom_rest():
    standin = KiwoomRestStandin(pa.table([[] for _ in TICK_SCHEMA], schema=TICK_SCHEMA), date.today(), APPKEY, SECRETKEY)
    url = standin.start()
    yield standin, url
    standin.stop()


def krx_plan(s: Settings, symbols):
    return kiwoom_plan(s, symbols, venues=["KRX"])


def collector_settings(settings: Settings, tmp_path: Path, rest_url: str, ws_url: str, **extra) -> Settings:
    values = {
        "kiwoom_appkey": APPKEY, "kiwoom_secretkey": SECRETKEY, "kiwoom_base_url": rest_url, "kiwoom_ws_url": ws_url,
        "broker_token_dir": tmp_path / "tokens", "collect_stall_s": 3.0, "collect_session_hours": "00:00-24:00",
        "collect_reconnect_initial_s": 0.05, "collect_reconnect_max_s": 0.2,
    }
    values.update(extra)
    return Settings(**{**settings.model_dump(), **values})


def test_real_element_maps_signed_values():
    received = datetime(2026, 11, 20, 1, 5, 7, tzinfo=UTC)  # 10:05:07 KST
    item = {"type": "0B", "item": "005930", "values": {"20": "100506", "10": "-20800", "15": "-37", "13": "123456"}}
    assert real_to_fields(item, received) == {
        "v": "1", "venue": "KRX", "symbol": "005930", "ts": "2026-11-20T10:05:06+09:00", "price": "20800", "volume": "37",
        "cum_volume": "123456", "side": "S", "source": "kiwoom", "received_at": received.isoformat(),
    }
    item["values"].update({"10": "+20850", "15": "+5"})
    assert real_to_fields(item, received)["side"] == "B"
    item["values"]["15"] = "5"
    assert real_to_fields(item, received)["side"] == ""
    del item["values"]["13"]
    with pytest.raises(InvalidTick, match="missing FID"):
        real_to_fields(item, received)


def test_business_date_is_the_kst_session_date():
    received = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)  # 08:30 KST on the 20th
    item = {"type": "0B", "item": "005930", "values": {"20": "083000", "10": "100", "15": "+1", "13": "1"}}
    assert real_to_fields(item, received)["ts"] == "2026-11-20T08:30:00+09:00"


def test_items_beyond_the_limit_are_named_and_counted_not_dropped(settings):
    symbols = [f"{i:06d}" for i in range(101)]
    plan = kiwoom_plan(settings, symbols, venues=["KRX"])
    assert len(plan.covered) == 100 and [pair for pair, _ in plan.uncovered] == [("KRX", "000100")]
    assert "TICKVAULT_KIWOOM_WS_MAX_SUBSCRIPTIONS" in plan.uncovered[0][1]


def test_collector_survives_disconnects_stalls_and_garbage(settings, rclient, kiwoom_rest, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rest, rest_url = kiwoom_rest
    standin = KiwoomWsStandin(SYMBOLS, valid_token=lambda t: rest.token_state(t) == "ok")

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start(), collect_stall_s=1.5)
        collector = build_kiwoom(s, krx_plan(s, SYMBOLS), rclient, token=KiwoomClient(s).token)
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_registered()
        await standin.trades(30, per_message=5)
        await standin.ping()
        await until(lambda: standin.pongs == 1, what="PING echo")

        seen = standin.connections
        await standin.drop()
        await standin.trades(8)
        await standin.wait_registered(newer_than=seen)
        await standin.trades(12, per_message=3)

        seen = standin.connections
        await standin.drop(abrupt=True)
        await standin.trades(5)
        await standin.wait_registered(newer_than=seen)

        seen = standin.connections
        standin.stall(4.0)  # a 60 s stall scaled down with the watchdog (1.5 s)
        await standin.trades(7)
        await standin.wait_registered(newer_than=seen)
        await standin.trades(9, per_message=4)

        bad = {"type": "0B", "item": "005930", "values": {"20": "100506", "10": "-20800"}}
        await standin.send_raw(json.dumps({"trnm": "REAL", "data": [bad]}))
        await standin.send_raw('{"trnm": "REAL", "data": [')  # truncated
        await until(lambda: collector.stats.ticks == len(standin.sent) and collector.stats.parse_errors == 2, what="all ticks")
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())
    entries = stream_entries(rclient, settings.stream)
    keys = [key_of(f) for f in entries]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted(t.key for t in standin.sent) and len(keys) == 30 + 12 + 9
    sides = {(f["symbol"], int(f["cum_volume"])): f["side"] for f in entries}
    assert all(sides[(t.symbol, t.cum_volume)] == t.side for t in standin.sent)
    gaps = read_gaps(rclient, settings.stream)
    assert [g["source"] for g in gaps] == ["kiwoom"] * 3
    assert [t for t in standin.lost if not in_a_gap(t, gaps)] == []
    assert len(standin.lost) == 8 + 5 + 7
    dlq = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert len(dlq) == 2 and {d["stage"] for d in dlq} == {"collect-kiwoom"}
    assert any("missing FID(s) 15, 13" in d["reason"] for d in dlq)
    assert any("unreadable message" in d["reason"] and d["f.raw"] == '{"trnm": "REAL", "data": [' for d in dlq)
    assert standin.removes >= 1
    tokens = {json.loads(m)["token"] for m in standin.received if '"LOGIN"' in m}
    assert tokens and all(t not in caplog.text for t in tokens | {SECRETKEY, APPKEY})
    assert collector.stats.reconnects == 3


def test_refused_login_retries_without_a_gap_or_data(settings, rclient, kiwoom_rest, tmp_path):
    _rest, rest_url = kiwoom_rest
    standin = KiwoomWsStandin(SYMBOLS, valid_token=lambda t: False)

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())
        collector = build_kiwoom(s, krx_plan(s, SYMBOLS), rclient, token=lambda: "not-a-token")
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        # the collector's own count: the stand-in counts a refusal before the collector has handled it
        await until(lambda: standin.logins_refused >= 2 and collector.stats.reconnects >= 2, what="a retried LOGIN")
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())
    assert collector.stats.reconnects >= 2 and collector.stats.ticks == 0
    assert read_gaps(rclient, settings.stream) == []  # never subscribed: nothing was being missed by a lost session


def test_server_refusing_the_registration_stops_with_a_clear_error(settings, rclient, kiwoom_rest, tmp_path):
    _rest, rest_url = kiwoom_rest
    standin = KiwoomWsStandin(SYMBOLS, max_items=2)

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())
        collector = build_kiwoom(s, krx_plan(s, SYMBOLS), rclient, token=lambda: "tok")
        try:
            await asyncio.wait_for(run_sessions(collector.sessions, collector.outbox, asyncio.Event()), timeout=10)
        finally:
            await standin.stop()

    with pytest.raises(FatalCollectorError, match="refused REG of 3 items"):
        asyncio.run(scenario())
    assert standin.regs_refused == 1


def test_expired_token_is_reissued_after_a_refused_login(settings, rclient, kiwoom_rest, tmp_path):
    from tickvault.services.collectors.service import kiwoom_token

    rest, rest_url = kiwoom_rest
    standin = KiwoomWsStandin(SYMBOLS, valid_token=lambda t: rest.token_state(t) == "ok")

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())
        KiwoomClient(s).token()  # cached on disk ...
        rest.expire_tokens()  # ... and expired at the server before the collector starts
        collector = build_kiwoom(s, krx_plan(s, SYMBOLS), rclient, token=kiwoom_token(s))
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_registered()
        await standin.trades(6, per_message=3)
        await until(lambda: collector.stats.ticks == 6)
        stop.set()
        await task
        await standin.stop()

    asyncio.run(scenario())
    assert standin.logins_refused == 1 and rest.token_issues == 2


# ---------------------------------------------------------------- two venues (CODE and CODE_NX)


def test_nx_item_is_nxt_and_a_contradicting_exchange_field_is_refused():
    received = datetime(2026, 11, 20, 10, 5, 7, tzinfo=UTC)  # 19:05:07 KST: NXT after-market
    item = {"type": "0B", "item": "005930_NX", "values": {"20": "190506", "10": "-20800", "15": "-37", "13": "4567", "9081": "2", "290": "3"}}
    fields = real_to_fields(item, received)
    assert (fields["venue"], fields["symbol"], fields["ts"]) == ("NXT", "005930", "2026-11-20T19:05:06+09:00")
    krx = {**item, "item": "005930", "values": {**item["values"], "9081": "1"}}
    assert real_to_fields(krx, received)["venue"] == "KRX"
    for exchange, item_name in (("1", "005930_NX"), ("2", "005930"), ("7", "005930")):
        wrong = {**item, "item": item_name, "values": {**item["values"], "9081": exchange}}
        with pytest.raises(InvalidTick, match=r"venue mismatch.*9081"):
            real_to_fields(wrong, received)
    no_field = {**item, "values": {k: v for k, v in item["values"].items() if k != "9081"}}
    assert real_to_fields(no_field, received)["venue"] == "NXT"  # absent: the item decides
    with pytest.raises(InvalidTick, match="smart-order-routing"):
        real_to_fields({**item, "item": "005930_AL"}, received)


def test_plan_registers_nx_items_for_the_universe_and_refuses_nxt_on_the_mock_server(settings):
    from tickvault.services.collectors.kiwoom import item_of

    universe = [("KRX", x) for x in SYMBOLS] + [("NXT", "005930")]
    plan = kiwoom_plan(settings, SYMBOLS, universe=universe)
    assert [item_of(p) for p in plan.covered] == ["005930", "000660", "035720", "005930_NX"]
    assert plan.uncovered == []
    mock = kiwoom_plan(settings.model_copy(update={"kiwoom_ws_url": "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"}),
                       SYMBOLS, universe=universe)
    assert [item_of(p) for p in mock.covered] == SYMBOLS
    assert mock.uncovered == [(("NXT", "005930"), "Kiwoom's mock server serves KRX only; use the real server for NXT")]


def test_collector_delivers_both_venues_once_and_dead_letters_venue_mismatches(settings, rclient, kiwoom_rest, tmp_path):
    from helpers import venue_key_of
    from standins.kiwoom_ws import Trade, real_element

    _rest, rest_url = kiwoom_rest
    nxt = SYMBOLS[:2]
    standin = KiwoomWsStandin(SYMBOLS, nxt_symbols=nxt)
    universe = [("KRX", x) for x in SYMBOLS] + [("NXT", x) for x in nxt]

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())
        collector = build_kiwoom(s, kiwoom_plan(s, SYMBOLS, universe=universe), rclient, token=lambda: "tok")
        stop = asyncio.Event()
        task = asyncio.create_task(run_sessions(collector.sessions, collector.outbox, stop))
        await standin.wait_registered()
        assert standin.registered_conn().items == {"005930", "000660", "035720", "005930_NX", "000660_NX"}
        await standin.trades(9, per_message=3, venue="KRX")
        await standin.trades(8, per_message=4, venue="NXT")
        await until(lambda: collector.stats.ticks == 17, what="both venues")
        seen = standin.connections
        await standin.drop()
        await standin.trades(3, venue="NXT")
        await standin.wait_registered(newer_than=seen)
        await until(lambda: collector.sessions[0].ready, what="ready again")
        await standin.trades(4, venue="NXT")
        await standin.trades(4, venue="KRX")
        odd = Trade("005930", standin.sent[-1].ts, 20_000, 5, 999_999, "B", "NXT")
        await standin.send_raw(json.dumps({"trnm": "REAL", "data": [real_element(odd, 20_000, exchange_code="1")]}))
        await until(lambda: collector.stats.ticks == len(standin.sent) and collector.stats.venue_mismatches == 1, what="all ticks")
        stop.set()
        await task
        await standin.stop()
        return collector

    collector = asyncio.run(scenario())
    keys = [venue_key_of(f) for f in stream_entries(rclient, settings.stream)]
    assert len(keys) == len(set(keys)) == len(standin.sent) == 25
    assert sorted(keys) == sorted(t.venue_key for t in standin.sent)
    assert sum(1 for k in keys if k[0] == "NXT") == 12
    gaps = read_gaps(rclient, settings.stream)
    assert sorted((g["venue"], g["symbols"]) for g in gaps) == [("KRX", ",".join(SYMBOLS)), ("NXT", ",".join(nxt))]
    assert standin.lost and all(in_a_gap(t, gaps) for t in standin.lost)
    dlq = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert len(dlq) == 1 and "venue mismatch" in dlq[0]["reason"] and '"9081": "1"' in dlq[0]["f.raw"]
    assert collector.stats.parse_errors == 1


def test_mock_server_refuses_nx_items(settings, rclient, kiwoom_rest, tmp_path):
    """Kiwoom's mock server is KRX only: a plan that registers _NX items anyway (a mock server
    behind another URL) is refused, and the collector stops saying so."""
    _rest, rest_url = kiwoom_rest
    standin = KiwoomWsStandin(SYMBOLS, nxt_symbols=SYMBOLS[:1], mock=True)

    async def scenario():
        s = collector_settings(settings, tmp_path, rest_url, await standin.start())
        plan = kiwoom_plan(s, SYMBOLS, universe=[("KRX", x) for x in SYMBOLS] + [("NXT", "005930")])
        collector = build_kiwoom(s, plan, rclient, token=lambda: "tok")
        try:
            await asyncio.wait_for(run_sessions(collector.sessions, collector.outbox, asyncio.Event()), timeout=10)
        finally:
            await standin.stop()

    with pytest.raises(FatalCollectorError, match=r"refused REG of 4 items \(1 NXT\).*mock server"):
        asyncio.run(scenario())
    assert standin.regs_refused == 1
