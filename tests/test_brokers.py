"""Broker REST clients over real HTTP against the loopback stand-ins (no mocks)."""

from __future__ import annotations

import logging
import math
import stat
import time
from datetime import date, datetime, timedelta

import pytest

from helpers import KIS_KEY, KIS_SECRET, KW_KEY, KW_SECRET, kis_settings, kw_settings
from standins.broker_http import index_truth, make_truth_day, minute_bars
from standins.kis_rest import KisRestStandin
from standins.kiwoom_rest import KiwoomRestStandin
from tickvault.core.config import Settings
from tickvault.core.wire import KST
from tickvault.services.brokers import BrokerAuthError
from tickvault.services.brokers.kis import KisClient
from tickvault.services.brokers.kiwoom import KiwoomClient

DAY = date(2026, 11, 20)
SYMBOLS = ["005930", "000660"]


@pytest.fixture(scope="module")
def truth():
    return make_truth_day(DAY, SYMBOLS, 400)


def at(hhmmss: str) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:]), tzinfo=KST)


# ---------------------------------------------------------------- KIS
def test_kis_token_cached_on_disk_owner_only_and_reused(truth, tmp_path):
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, token_interval_s=60) as server:
        first = KisClient(kis_settings(server.url, tmp_path))
        token = first.access_token()
        files = list((tmp_path / "tokens").iterdir())
        assert len(files) == 1
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "tokens").stat().st_mode) == 0o700
        assert KIS_KEY not in files[0].name
        # a second process (new client) reuses the cached token: no second issue inside the minute
        second = KisClient(kis_settings(server.url, tmp_path))
        assert second.access_token() == token
        assert server.token_issues == 1
        assert second.approval_key().startswith("apv-")
        assert second.approval_key() == second.approval_key()
        assert server.approval_issues == 1
        first.close(), second.close()


def test_kis_token_issue_limit_is_a_clear_error(truth, tmp_path):
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, token_interval_s=60) as server:
        KisClient(kis_settings(server.url, tmp_path / "a")).access_token()
        other = KisClient(kis_settings(server.url, tmp_path / "b", kis_token_wait_s=0.05))  # no shared cache
        with pytest.raises(BrokerAuthError) as err:
            other.access_token()
        assert err.value.code == "EGW00133"
        assert server.token_issues == 1


def test_kis_bad_secret_is_refused_without_leaking(truth, tmp_path):
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET) as server:
        bad = Settings(kis_appkey=KIS_KEY, kis_appsecret="wrongSecret123", kis_base_url=server.url, broker_token_dir=tmp_path)
        with pytest.raises(BrokerAuthError) as err:
            KisClient(bad).access_token()
        assert KIS_KEY not in str(err.value) and "wrongSecret123" not in str(err.value)
        assert "TICKVAULT_KIS_APPKEY" in str(err.value)


def test_kis_minute_bars_today_page_backwards(truth, tmp_path):
    expected = {s: minute_bars(t) for s, t in index_truth(truth).items()}
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        for symbol in SYMBOLS:
            bars = client.minute_bars_today(symbol, DAY)
            assert [(b.minute, b.volume, int(b.close)) for b in bars] == [(e["minute"], e["volume"], e["close"]) for e in expected[symbol]]
        pages = sum(math.ceil(len(expected[s]) / 30) + (1 if len(expected[s]) % 30 == 0 else 0) for s in SYMBOLS)
        assert server.calls_by_api == {"FHKST03010200": pages}
        assert server.rejected == 0
        # a past day's bars (FHKST03010230, 120 rows a page)
        day_bars = client.minute_bars_day(SYMBOLS[0], DAY)
        assert [(b.minute, b.volume) for b in day_bars] == [(e["minute"], e["volume"]) for e in expected[SYMBOLS[0]]]
        assert client.minute_bars_day(SYMBOLS[0], DAY - timedelta(days=1)) == []


def test_kis_trades_window_exact_including_same_second_bursts(truth, tmp_path):
    trades = index_truth(truth)[SYMBOLS[0]]
    start, end = at("100000"), at("113000")
    want = [(t.ts, t.price, t.volume, t.cum_volume) for t in trades if start <= t.ts < end]
    assert len(want) > 40  # more than a page
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        got = client.trades_today(SYMBOLS[0], DAY, start, end)
        assert [(t.ts, int(t.price), t.volume, t.cum_volume) for t in got] == want
        assert server.rejected == 0


def test_kis_output2_single_object_accepted(truth, tmp_path):
    trades = index_truth(truth)[SYMBOLS[0]]
    lone = next(t for i, t in enumerate(trades) if (i == 0 or trades[i - 1].ts != t.ts) and (i + 1 == len(trades) or trades[i + 1].ts != t.ts))
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, output2_as_object=True) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        # ask for exactly the lone trade's second: the server pages one row at a time at the end
        got = client.trades_today(SYMBOLS[0], DAY, lone.ts, lone.ts + timedelta(seconds=1))
        assert [(t.ts, t.cum_volume) for t in got] == [(lone.ts, lone.cum_volume)]


def test_kis_token_expiry_and_rate_error_mid_run(truth, tmp_path):
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        before = client.minute_bars_today(SYMBOLS[0], DAY)
        server.expire_tokens()
        server.fail_next_calls_with_rate_limit(2)
        after = client.minute_bars_today(SYMBOLS[0], DAY)
        assert after == before
        assert client.stats.token_reissues == 1 and server.token_issues == 2
        assert client.stats.rate_retries == 2 and server.injected_rate_errors == 2
        assert server.rejected == 0


def test_kis_rate_limit_respected_at_full_speed(truth, tmp_path):
    """The stand-in allows 20 calls in any second; the client's default 19/s never trips it."""
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, rate_limit=20) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        client.access_token()
        started = time.monotonic()
        for _ in range(45):
            client.minute_bars_today(SYMBOLS[1], DAY, until="090500")
        elapsed = time.monotonic() - started
        assert server.rejected == 0 and server.calls == 45
        assert elapsed >= 44 / 19 - 0.05


def test_kis_paper_rate(truth, tmp_path):
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, rate_limit=2) as server:
        client = KisClient(kis_settings(server.url, tmp_path, kis_paper=True))
        assert client.bucket.rate < 2
        for _ in range(5):
            client.minute_bars_today(SYMBOLS[1], DAY, until="090500")
        assert server.rejected == 0 and server.calls == 5


def test_kis_client_backs_off_when_the_server_limit_is_lower(truth, tmp_path):
    """A misconfigured rate (server stricter than configured) costs retries, never data."""
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET, rate_limit=5) as server:
        client = KisClient(kis_settings(server.url, tmp_path, kis_rate_per_s=50))
        results = [client.minute_bars_today(SYMBOLS[1], DAY, until="091000") for _ in range(12)]
        assert all(r == results[0] for r in results)
        assert server.rejected > 0 and client.stats.rate_retries == server.rejected


def test_kis_paper_and_real_urls():
    real = KisClient(Settings(kis_appkey="k" * 8, kis_appsecret="s" * 8))
    paper = KisClient(Settings(kis_appkey="k" * 8, kis_appsecret="s" * 8, kis_paper=True))
    assert real.base_url == "https://openapi.koreainvestment.com:9443"
    assert paper.base_url == "https://openapivts.koreainvestment.com:29443"
    assert paper.ws_url.endswith(":31000") and real.ws_url.endswith(":21000")


def test_missing_credentials_say_which_variables():
    with pytest.raises(BrokerAuthError, match="TICKVAULT_KIS_APPKEY"):
        KisClient(Settings())
    with pytest.raises(BrokerAuthError, match="TICKVAULT_KIWOOM_APPKEY"):
        KiwoomClient(Settings())


# ---------------------------------------------------------------- Kiwoom
def test_kiwoom_token_and_minute_bars_with_paging(truth, tmp_path):
    expected = minute_bars(index_truth(truth)[SYMBOLS[0]])
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, page_rows=50) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path))
        token = client.token()
        assert KiwoomClient(kw_settings(server.url, tmp_path)).token() == token  # disk cache
        bars = client.minute_bars(SYMBOLS[0], DAY)
        assert [(b.minute, b.volume, int(b.close), int(b.low)) for b in bars] == [(e["minute"], e["volume"], e["close"], e["low"]) for e in expected]
        assert server.calls_by_api == {"ka10080": math.ceil(len(expected) / 50)}
        assert server.rejected == 0 and server.token_issues == 1


def test_kiwoom_ticks_back_to_a_time(truth, tmp_path):
    trades = index_truth(truth)[SYMBOLS[1]]
    since = at("140000")
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, page_rows=40) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path))
        got = client.trades_back_to(SYMBOLS[1], DAY, since)
        tail = [(t.ts, t.price, t.volume) for t in trades if t.ts >= since]
        assert [(t.ts, int(t.price), t.volume) for t in got if t.ts >= since] == tail
        assert all(t.cum_volume is None for t in got)
        newer = sum(1 for t in trades if t.ts >= since)
        assert server.calls_by_api["ka10079"] == newer // 40 + 1


def test_kiwoom_token_expiry_and_rate_limit_mid_run(truth, tmp_path):
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, page_rows=30) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path))
        before = client.minute_bars(SYMBOLS[1], DAY)
        server.expire_tokens()
        server.fail_next_calls_with_rate_limit(1)
        after = client.minute_bars(SYMBOLS[1], DAY)
        assert after == before
        assert client.stats.token_reissues == 1 and client.stats.rate_retries == 1
        assert server.rejected == 0


def test_kiwoom_rate_limit_respected(truth, tmp_path):
    with KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, rate_limit=5, page_rows=10) as server:
        client = KiwoomClient(kw_settings(server.url, tmp_path))
        client.minute_bars(SYMBOLS[0], DAY)
        assert server.calls > 10 and server.rejected == 0


# ---------------------------------------------------------------- secrets
def test_secrets_never_in_logs_exceptions_or_reprs(truth, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    tokens: list[str] = []
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET) as kis, KiwoomRestStandin(truth, DAY, KW_KEY, KW_SECRET, page_rows=100) as kw:
        s = Settings(kis_appkey=KIS_KEY, kis_appsecret=KIS_SECRET, kis_base_url=kis.url, kiwoom_appkey=KW_KEY,
                     kiwoom_secretkey=KW_SECRET, kiwoom_base_url=kw.url, broker_token_dir=tmp_path / "tok")
        texts += [repr(s), str(s), s.model_dump_json()]
        k = KisClient(s)
        w = KiwoomClient(s)
        tokens += [k.access_token(), k.approval_key(), w.token()]
        k.minute_bars_today(SYMBOLS[0], DAY, until="100000")
        kis.expire_tokens(), kw.expire_tokens()
        kis.fail_next_calls_with_rate_limit(1)
        k.trades_today(SYMBOLS[0], DAY, at("100000"), at("101000"))
        w.minute_bars(SYMBOLS[0], DAY)
        tokens += [k.access_token(), w.token()]
        texts += [repr(k), repr(w), repr(k._token), repr(w._token)]
        # failures: wrong secrets, unknown symbol path
        for bad in (Settings(kis_appkey=KIS_KEY, kis_appsecret=KIS_SECRET + "x", kis_base_url=kis.url, broker_token_dir=tmp_path / "b1"),):
            with pytest.raises(BrokerAuthError) as err:
                KisClient(bad).access_token()
            texts.append(str(err.value) + repr(err.value))
        with pytest.raises(BrokerAuthError) as err:
            KiwoomClient(Settings(kiwoom_appkey=KW_KEY, kiwoom_secretkey=KW_SECRET + "x", kiwoom_base_url=kw.url,
                                  broker_token_dir=tmp_path / "b2")).token()
        texts.append(str(err.value) + repr(err.value))
        # the headers really carried the secrets (so the grep below is meaningful)
        assert any(r.headers.get("appsecret") == KIS_SECRET for r in kis.requests_log)
    texts.append(caplog.text)
    haystack = "\n".join(texts)
    assert "kis: issued a new access token" in caplog.text
    for secret in [KIS_KEY, KIS_SECRET, KW_KEY, KW_SECRET, *tokens]:
        assert secret not in haystack, "a secret leaked into logs, reprs or exceptions"


def test_kis_day_volume_today_and_past(truth, tmp_path):
    last = {s: t[-1].cum_volume for s, t in index_truth(truth).items()}
    with KisRestStandin(truth, DAY, KIS_KEY, KIS_SECRET) as server:
        client = KisClient(kis_settings(server.url, tmp_path))
        assert client.day_volume(SYMBOLS[0], DAY, today=DAY) == last[SYMBOLS[0]]
        assert client.day_volume(SYMBOLS[1], DAY, today=DAY + timedelta(days=3)) == last[SYMBOLS[1]]
        assert client.day_volume(SYMBOLS[1], DAY - timedelta(days=9), today=DAY) is None
        assert server.calls_by_api == {"FHKST01010100": 1, "FHKST01010400": 2}
