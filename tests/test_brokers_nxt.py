"""The NXT side of both brokers' REST clients against the loopback stand-ins: NXT eligibility
(KIS CTPF1002R, Kiwoom ka10099/ka10100), venue-tagged trades and bars (KIS market code NX,
Kiwoom _NX items and ka10003's stex_tp), what paper/mock accounts refuse, the day's universe
refresh into both stores, and recovery's refusal of another venue's trades."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from helpers import KIS_KEY, KIS_SECRET, KW_KEY, KW_SECRET, kis_settings, kw_settings
from standins.broker_http import index_truth, make_nxt_truth, make_truth_day, minute_bars
from standins.kis_rest import KisRestStandin
from standins.kiwoom_rest import KiwoomRestStandin
from tickvault.core.config import Settings
from tickvault.core.wire import KST
from tickvault.services.brokers import BrokerError
from tickvault.services.brokers.common import BrokerTrade
from tickvault.services.brokers.kis import KisClient
from tickvault.services.brokers.kiwoom import KiwoomClient
from tickvault.services.recovery.archive import analyse
from tickvault.services.recovery.convert import from_exact
from tickvault.services.recovery.sources import KisSource, KiwoomSource

DAY = date(2026, 11, 20)
SYMBOLS = ["005930", "000660", "035720"]
NXT = SYMBOLS[:2]


@pytest.fixture(scope="module")
def truth() -> pa.Table:
    """KRX for every symbol, NXT (its own trades and cumulative volume) for two of them."""
    return pa.concat_tables([make_truth_day(DAY, SYMBOLS, 120), make_nxt_truth(DAY, NXT, 90)])


def rows(trades) -> list[tuple]:
    return [(t.ts, int(t.price), t.volume) for t in trades]


def whole_day() -> tuple[datetime, datetime]:
    return datetime(2026, 11, 20, 7, 0, tzinfo=KST), datetime(2026, 11, 20, 20, 0, 1, tzinfo=KST)


# ---------------------------------------------------------------- KIS


def test_kis_nxt_status_reads_listing_and_halt(truth, tmp_path):
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, nxt_halted=["000660"]) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        assert [client.nxt_status(s) for s in SYMBOLS] == [True, False, False]  # 000660 halted on NXT today
        assert server.calls_by_api == {"CTPF1002R": 3}
        query = server.requests_log[-1].query
        assert (query["PRDT_TYPE_CD"], query["PDNO"]) == ("300", "035720")
        with pytest.raises(BrokerError, match="CTPF1002R"):
            client.nxt_status("999999")
        client.close()


def test_kis_nx_market_code_returns_nxt_trades_tagged_nxt(truth, tmp_path):
    start, end = whole_day()
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        source, krx_source = KisSource(client, "NXT"), KisSource(client, "KRX")
        nxt = source.trades(NXT[0], DAY, DAY, [(start, end)])
        krx = krx_source.trades(NXT[0], DAY, DAY, [(start, end)])
        assert rows(nxt) == [(t.ts, t.price, t.volume) for t in index_truth(truth, "NXT")[NXT[0]]]
        assert [t.cum_volume for t in nxt] == [t.cum_volume for t in index_truth(truth, "NXT")[NXT[0]]]
        assert {t.venue for t in nxt} == {"NXT"} and {t.venue for t in krx} == {"KRX"}
        assert rows(krx) == [(t.ts, t.price, t.volume) for t in index_truth(truth)[NXT[0]]]
        assert {r.query["FID_COND_MRKT_DIV_CODE"] for r in server.requests_log if r.query} == {"J", "NX"}
        bars = source.minute_bars(NXT[0], DAY, DAY, "200000")
        assert [(b.minute, b.volume) for b in bars] == [(m["minute"], m["volume"]) for m in minute_bars(index_truth(truth, "NXT")[NXT[0]])]
        assert source.day_volume(NXT[0], DAY, DAY) == index_truth(truth, "NXT")[NXT[0]][-1].cum_volume
        source.close()


def test_kis_paper_account_is_refused_nxt(truth, tmp_path):
    start, end = whole_day()
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, paper=True) as server:
        client = KisClient(kis_settings(server.url, tmp_path, kis_paper=True, kis_rate_per_s=50))
        assert client.trades_today(NXT[0], DAY, start, end)  # KRX served
        with pytest.raises(BrokerError, match="모의투자"):
            client.trades_today(NXT[0], DAY, start, end, venue="NXT")
        client.close()


# ---------------------------------------------------------------- Kiwoom


def test_kiwoom_nxt_enabled_from_the_lists_then_ka10100(truth, tmp_path):
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, rate_limit=50, page_rows=1, kosdaq=["035720"], list_omits=["000660"]) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path, kiwoom_rate_per_s=50))
        assert client.nxt_enabled(SYMBOLS + ["999999"]) == {"005930": True, "000660": True, "035720": False}
        # one page per listed row (page_rows=1) in each market, then ka10100 for the two the lists do not name
        assert server.calls_by_api == {"ka10099": 2, "ka10100": 2}
        client.close()


def test_kiwoom_nx_items_return_nxt_rows_and_ka10003_tags_each_trade(truth, tmp_path):
    start, _end = whole_day()
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, rate_limit=50) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path, kiwoom_rate_per_s=50))
        source = KiwoomSource(client, "NXT")
        nxt_truth = index_truth(truth, "NXT")[NXT[0]]
        ticks = source.trades(NXT[0], DAY, DAY, [(start, start)])
        assert {t.venue for t in ticks} == {"NXT"} and sorted(rows(ticks)) == sorted((t.ts, t.price, t.volume) for t in nxt_truth)
        assert [(b.minute, b.volume) for b in source.minute_bars(NXT[0], DAY, DAY, "200000")] == \
            [(m["minute"], m["volume"]) for m in minute_bars(nxt_truth)]
        tagged = client.venue_trades_back_to(NXT[0], DAY, start, "NXT")
        assert [(t.venue, t.cum_volume) for t in tagged] == [("NXT", t.cum_volume) for t in nxt_truth]
        assert {r.body["stk_cd"] for r in server.requests_log if isinstance(r.body, dict) and "stk_cd" in r.body} == {"005930_NX"}
        with pytest.raises(BrokerError, match="1901"):
            client.trades_back_to(NXT[0] + "_AL", DAY, start)  # SOR is no venue: not served
        client.close()


def test_kiwoom_venue_trades_refuse_rows_of_another_venue(truth, tmp_path):
    """ka10003 on a KRX item lists KRX rows only; asked as NXT the rows' stex_tp disagrees and none is kept."""
    start, _end = whole_day()
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, rate_limit=50) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path, kiwoom_rate_per_s=50))
        krx = client.venue_trades_back_to(SYMBOLS[2], DAY, start, "KRX")
        assert len(krx) == len(index_truth(truth)[SYMBOLS[2]]) and {t.venue for t in krx} == {"KRX"}
        client.close()


def test_kiwoom_mock_server_refuses_nx_items(truth, tmp_path):
    start, _end = whole_day()
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, rate_limit=50, mock=True) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path, kiwoom_rate_per_s=50))
        assert client.trades_back_to(NXT[0], DAY, start)
        with pytest.raises(BrokerError, match="1901"):
            client.trades_back_to(NXT[0], DAY, start, venue="NXT")
        client.close()


# ---------------------------------------------------------------- recovery conversion


def test_trades_of_another_venue_never_fill_a_venue_hole():
    ts = datetime(2026, 11, 20, 19, 0, tzinfo=KST)
    archive = analyse("005930", [])
    nxt_trade = BrokerTrade(ts, Decimal(100), 5, 5, "NXT")
    assert [t.venue for t in from_exact(archive, [nxt_trade], ts, venue="NXT").ticks] == ["NXT"]
    refused = from_exact(archive, [nxt_trade], ts)  # a KRX recovery handed NXT rows
    assert refused.ticks == [] and "NXT trades for a KRX recovery" in (refused.reason or "")


# ---------------------------------------------------------------- the day's universe


def test_universe_refresh_is_stored_in_both_stores_and_used_by_the_plan(settings, truth, tmp_path):
    from tickvault.services.collectors.service import kis_plan
    from tickvault.services.collectors.universe import day_universe, kis_lookup, refresh_universe, stored_universe
    from tickvault.stores.hot import HotStore
    from tickvault.stores.lake import Lake

    for store in (HotStore(settings), Lake(settings)):
        store.init()
        store.write_universe(DAY, [("KRX", "207940"), ("NXT", "207940"), ("NXT", "000660")], "earlier")  # 000660: stale
        store.close()
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, nxt_halted=["000660"]) as server:
        s = Settings(**{**settings.model_dump(), "kis_appkey": KIS_KEY, "kis_appsecret": KIS_SECRET, "kis_base_url": server.url,
                        "broker_token_dir": tmp_path / "tokens"})
        merged = refresh_universe(s, DAY, SYMBOLS + ["999999"], kis_lookup(s), "kis")
        want = {("KRX", "207940"), ("NXT", "207940"), ("KRX", "005930"), ("KRX", "000660"), ("KRX", "035720"), ("NXT", "005930")}
        assert set(merged) == want
        for store in (HotStore(s), Lake(s)):
            assert set(store.read_universe(DAY)) == want
            store.close()
        assert set(stored_universe(s, DAY)) == want
        calls = server.calls
        universe = day_universe(s, DAY, SYMBOLS, kis_lookup(s), "kis")  # stored covers every symbol: no broker call
        assert server.calls == calls and set(universe or ()) == want
        plan = kis_plan(s, SYMBOLS + ["999999"], universe=universe, app_count=1)
        assert plan.covered == [("KRX", x) for x in SYMBOLS + ["999999"]] + [("NXT", "005930")]
        assert [pair for pair, _ in plan.uncovered] == [("NXT", "999999")]  # the broker does not know it: said, not dropped
        day_universe(s, DAY, SYMBOLS, kis_lookup(s), "kis", refresh=True)
        assert server.calls == calls + len(SYMBOLS)


def test_universe_refresh_from_kiwoom(settings, truth, tmp_path):
    from tickvault.services.collectors.universe import broker_lookup, refresh_universe
    from tickvault.stores.hot import HotStore
    from tickvault.stores.lake import Lake

    hot = HotStore(settings)
    hot.init()
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, rate_limit=50, kosdaq=["000660"]) as server:
        s = Settings(**{**settings.model_dump(), "kiwoom_appkey": KW_KEY, "kiwoom_secretkey": KW_SECRET, "kiwoom_base_url": server.url,
                        "broker_token_dir": tmp_path / "tokens", "kiwoom_rate_per_s": 50})
        merged = refresh_universe(s, DAY, SYMBOLS, broker_lookup(s, "kiwoom"), "kiwoom")
        assert sorted(merged) == sorted([("KRX", x) for x in SYMBOLS] + [("NXT", x) for x in NXT])
        assert server.calls_by_api == {"ka10099": 2}  # both markets listed every symbol: no ka10100
    assert sorted(hot.read_universe(DAY)) == sorted(merged)  # the lake does not exist here: hot only
    hot.close()
    lake = Lake(s)
    assert not lake.exists()  # a collector host without the lake never creates one
    lake.close()
