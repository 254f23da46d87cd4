"""KIS (Korea Investment & Securities) Open API REST client: tokens, approval key, quotations.

Why it looks like this:
- a token may be issued only about once a minute and lives a day, so it is cached on
  disk (0600) and shared by every process of the installation;
- the envelope ``rt_cd/msg_cd/msg1`` decides success, whatever the HTTP status (KIS
  answers errors with 200 as well as 500);
- calls go through one token bucket per client (about 20/s real, 2/s paper per app key);
  a rate refusal (EGW00201) backs off and retries, an expired/invalid token
  (EGW00123/EGW00121) is re-issued once and the call repeated.
Secrets stay in SecretStr; every message passes through a scrubber before it is raised
or logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from typing import Any

import httpx

from ...core.config import Settings
from ...core.wire import KST, Venue
from .common import BrokerTrade, MinuteBar, Scrubber, abs_price, backoff, kst_at, request_with_retries, to_int
from .errors import BrokerAuthError, BrokerError, BrokerRateLimited
from .ratelimit import TokenBucket
from .session import BrokerSession
from .tokencache import CachedToken

log = logging.getLogger(__name__)

REAL_URL = "https://openapi.koreainvestment.com:9443"
PAPER_URL = "https://openapivts.koreainvestment.com:29443"
REAL_WS_URL = "ws://ops.koreainvestment.com:21000"
PAPER_WS_URL = "ws://ops.koreainvestment.com:31000"

TOKEN_PATH = "/oauth2/tokenP"
APPROVAL_PATH = "/oauth2/Approval"
QUOTES = "/uapi/domestic-stock/v1/quotations"
TODAY_BARS = (f"{QUOTES}/inquire-time-itemchartprice", "FHKST03010200")
DAY_BARS = (f"{QUOTES}/inquire-time-dailychartprice", "FHKST03010230")
TODAY_TRADES = (f"{QUOTES}/inquire-time-itemconclusion", "FHPST01060000")
PRICE = (f"{QUOTES}/inquire-price", "FHKST01010100")
DAILY_PRICE = (f"{QUOTES}/inquire-daily-price", "FHKST01010400")
STOCK_INFO = (f"{QUOTES}/search-stock-info", "CTPF1002R")

#: FID_COND_MRKT_DIV_CODE of each venue on the quotation TRs (UN, 통합, is not a venue).
MARKET_CODES: dict[Venue, str] = {"KRX": "J", "NXT": "NX"}

RATE_LIMITED = "EGW00201"
TOKEN_EXPIRED = "EGW00123"
TOKEN_INVALID = "EGW00121"
TOKEN_ISSUE_LIMIT = "EGW00133"

#: Rows per call (documented: 30 for today's bars, 120 for past days).
TODAY_BARS_ROWS = 30
DAY_BARS_ROWS = 120
SESSION_FLOOR = dtime(7, 0)  # nothing trades before this (KRX's 2026 pre-market opens at 07:00, NXT's at 08:00)


@dataclass
class KisResponse:
    body: dict[str, Any]
    headers: httpx.Headers


class KisClient(BrokerSession):
    """Thread-safe KIS REST client for one app key."""

    broker = "kis"

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if settings.kis_appkey is None or settings.kis_appsecret is None:
            raise BrokerAuthError("kis", "no credentials: set TICKVAULT_KIS_APPKEY and TICKVAULT_KIS_APPSECRET")
        self._appkey = settings.kis_appkey
        self._appsecret = settings.kis_appsecret
        self.paper = settings.kis_paper
        self.base_url = (settings.kis_base_url or (PAPER_URL if self.paper else REAL_URL)).rstrip("/")
        self.ws_url = settings.kis_ws_url or (PAPER_WS_URL if self.paper else REAL_WS_URL)
        rate = settings.kis_rate_per_s or (1.8 if self.paper else 19.0)
        self.bucket = TokenBucket(rate, sleep=sleep)
        self.retries = settings.broker_max_retries
        self.token_wait_s = settings.kis_token_wait_s
        self._sleep = sleep
        self._open_session(settings, self.base_url, self._appkey.get_secret_value(), transport)
        self._approval: str | None = None
        self._scrub = Scrubber(lambda: (self._appkey, self._appsecret, self._token.value if self._token else None, self._approval))

    def __repr__(self) -> str:
        return f"KisClient(base_url={self.base_url!r}, paper={self.paper})"

    # ------------------------------------------------------------------ auth
    def access_token(self) -> str:
        """A valid access token: from memory, else the disk cache, else freshly issued."""
        return self._current_token()

    def _issue_token(self) -> CachedToken:
        payload = {
            "grant_type": "client_credentials",
            "appkey": self._appkey.get_secret_value(),
            "appsecret": self._appsecret.get_secret_value(),
        }
        for attempt in range(3):
            response = request_with_retries(
                "kis", lambda: self._http.post(TOKEN_PATH, json=payload, headers={"content-type": "application/json; charset=utf-8"}),
                self.retries, self._sleep,
            )
            body = self._json(response)
            self.stats.token_issues += 1
            token = body.get("access_token")
            if response.status_code == 200 and token:
                expires = self._token_expiry(body)
                log.info("kis: issued a new access token (valid until %s)", expires.astimezone(KST).isoformat())
                return CachedToken(str(token), expires)
            code = str(body.get("error_code") or body.get("msg_cd") or "")
            message = str(body.get("error_description") or body.get("msg1") or "token refused")
            if code == TOKEN_ISSUE_LIMIT and attempt < 2:
                log.warning("kis: token issuing limited (about once a minute); waiting %.0fs", self.token_wait_s)
                self._sleep(self.token_wait_s)
                continue
            raise BrokerAuthError("kis", self._scrub(f"token not issued: {message}; check TICKVAULT_KIS_APPKEY/APPSECRET and the base URL"),
                                  code or None, response.status_code)
        raise AssertionError("unreachable")

    @staticmethod
    def _token_expiry(body: dict[str, Any]) -> datetime:
        text = body.get("access_token_token_expired")
        if text:
            try:
                return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
            except ValueError:
                pass
        seconds = int(body.get("expires_in") or 86400)
        return datetime.now(UTC) + timedelta(seconds=seconds)

    def approval_key(self) -> str:
        """WebSocket approval key (POST /oauth2/Approval; note the body says ``secretkey``)."""
        with self._lock:
            if self._approval:
                return self._approval
            payload = {
                "grant_type": "client_credentials",
                "appkey": self._appkey.get_secret_value(),
                "secretkey": self._appsecret.get_secret_value(),
            }
            response = request_with_retries(
                "kis", lambda: self._http.post(APPROVAL_PATH, json=payload, headers={"content-type": "application/json; charset=utf-8"}),
                self.retries, self._sleep,
            )
            body = self._json(response)
            key = body.get("approval_key")
            if response.status_code != 200 or not key:
                code = str(body.get("error_code") or body.get("msg_cd") or "") or None
                message = str(body.get("error_description") or body.get("msg1") or "approval key refused")
                raise BrokerAuthError("kis", self._scrub(f"approval key not issued: {message}; check TICKVAULT_KIS_APPKEY/APPSECRET"),
                                      code, response.status_code)
            self._approval = str(key)
            return self._approval

    # ------------------------------------------------------------------ calls
    def get(self, path: str, tr_id: str, params: dict[str, str], tr_cont: str = "") -> KisResponse:
        """One quotation call: rate-limited, envelope-checked, retried on rate and token errors."""
        reissued = False
        for attempt in range(self.retries + 1):
            self.bucket.acquire()
            headers = {
                "content-type": "application/json; charset=utf-8",
                "authorization": f"Bearer {self.access_token()}",
                "appkey": self._appkey.get_secret_value(),
                "appsecret": self._appsecret.get_secret_value(),
                "tr_id": tr_id,
                "custtype": "P",
            }
            if tr_cont:
                headers["tr_cont"] = tr_cont
            response = request_with_retries("kis", partial(self._http.get, path, params=params, headers=headers), self.retries, self._sleep)
            self.stats.calls += 1
            self.stats.by_tr[tr_id] = self.stats.by_tr.get(tr_id, 0) + 1
            body = self._json(response)
            rt_cd = str(body.get("rt_cd", ""))
            code = str(body.get("msg_cd") or body.get("error_code") or "")
            if rt_cd == "0":
                return KisResponse(body, response.headers)
            if code == RATE_LIMITED:
                self.stats.rate_retries += 1
                delay = backoff(attempt, base=1.0 / self.bucket.rate + 0.05)
                log.warning("kis: rate limit (EGW00201) on %s; retrying in %.2fs", tr_id, delay)
                self.bucket.penalize(delay)
                continue
            if code in (TOKEN_EXPIRED, TOKEN_INVALID) and not reissued:
                log.warning("kis: token %s (%s); issuing a new one", "expired" if code == TOKEN_EXPIRED else "invalid", code)
                self.stats.token_reissues += 1
                self.invalidate_token()
                reissued = True
                continue
            if not body and response.status_code >= 500 and attempt < self.retries:
                self._sleep(backoff(attempt))
                continue
            message = str(body.get("msg1") or body.get("error_description") or response.reason_phrase or "call failed")
            if code in (TOKEN_EXPIRED, TOKEN_INVALID):
                raise BrokerAuthError("kis", self._scrub(f"{tr_id}: {message}; a fresh token was refused too — check the app key"), code, response.status_code)
            raise BrokerError("kis", self._scrub(f"{tr_id}: {message}"), code or None, response.status_code)
        raise BrokerRateLimited("kis", f"{tr_id}: still refused for rate after {self.retries + 1} attempts; lower kis_rate_per_s", RATE_LIMITED)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            if response.status_code >= 500:
                return {}
            raise BrokerError("kis", self._scrub(f"non-JSON answer from {response.request.url.path}: {response.text[:120]!r}"),
                              status=response.status_code) from None
        return body if isinstance(body, dict) else {}

    # ------------------------------------------------------------------ endpoints
    def nxt_status(self, symbol: str) -> bool:
        """Does ``symbol`` trade on NXT today? search-stock-info (CTPF1002R): NXT 거래종목
        (``cptt_trad_tr_psbl_yn`` Y) and not halted there (``nxt_tr_stop_yn`` not Y)."""
        path, tr_id = STOCK_INFO
        output = self.get(path, tr_id, {"PRDT_TYPE_CD": "300", "PDNO": symbol}).body.get("output") or {}
        if isinstance(output, list):
            output = output[0] if output else {}
        return str(output.get("cptt_trad_tr_psbl_yn", "")).upper() == "Y" and str(output.get("nxt_tr_stop_yn", "")).upper() != "Y"

    def day_volume(self, symbol: str, day: date, today: date, venue: Venue = "KRX") -> int | None:
        """The day's accumulated volume (``acml_vol``) in one call: inquire-price for today,
        inquire-daily-price (last 30 days) for a past day; None when the broker has no row."""
        if day == today:
            path, tr_id = PRICE
            output = self.get(path, tr_id, {"FID_COND_MRKT_DIV_CODE": MARKET_CODES[venue], "FID_INPUT_ISCD": symbol}).body.get("output") or {}
            if isinstance(output, list):
                output = output[0] if output else {}
            value = output.get("acml_vol")
            return to_int(value) if value not in (None, "") else None
        path, tr_id = DAILY_PRICE
        rows = self.get(path, tr_id, {"FID_COND_MRKT_DIV_CODE": MARKET_CODES[venue], "FID_INPUT_ISCD": symbol, "FID_PERIOD_DIV_CODE": "D",
                                      "FID_ORG_ADJ_PRC": "1"}).body.get("output") or []
        if isinstance(rows, dict):
            rows = [rows]
        want = day.strftime("%Y%m%d")
        for row in rows:
            if str(row.get("stck_bsop_date")) == want and row.get("acml_vol") not in (None, ""):
                return to_int(row["acml_vol"])
        return None

    def minute_bars_today(self, symbol: str, day: date, until: str = "153000", venue: Venue = "KRX") -> list[MinuteBar]:
        """Today's minute bars (FHKST03010200) of one venue, paging backwards 30 rows at a time."""
        path, tr_id = TODAY_BARS
        return self._page_bars(symbol, day, until, TODAY_BARS_ROWS, lambda hour: (path, tr_id, {
            "FID_ETC_CLS_CODE": "",
            "FID_COND_MRKT_DIV_CODE": MARKET_CODES[venue],
            "FID_INPUT_ISCD": symbol,
            "FID_INPUT_HOUR_1": hour,
            "FID_PW_DATA_INCU_YN": "Y",
        }))

    def minute_bars_day(self, symbol: str, day: date, until: str = "153000", venue: Venue = "KRX") -> list[MinuteBar]:
        """A past day's minute bars (FHKST03010230) of one venue, paging backwards 120 rows at a time."""
        path, tr_id = DAY_BARS
        return self._page_bars(symbol, day, until, DAY_BARS_ROWS, lambda hour: (path, tr_id, {
            "FID_COND_MRKT_DIV_CODE": MARKET_CODES[venue],
            "FID_INPUT_ISCD": symbol,
            "FID_INPUT_HOUR_1": hour,
            "FID_INPUT_DATE_1": day.strftime("%Y%m%d"),
            "FID_PW_DATA_INCU_YN": "Y",
            "FID_FAKE_TICK_INCU_YN": "",
        }))

    def _page_bars(self, symbol: str, day: date, until: str, page_rows: int,
                   request: Callable[[str], tuple[str, str, dict[str, str]]]) -> list[MinuteBar]:
        bars: dict[datetime, MinuteBar] = {}
        hour = until
        want = day.strftime("%Y%m%d")
        while True:
            path, tr_id, params = request(hour)
            rows = self.get(path, tr_id, params).body.get("output2") or []
            if isinstance(rows, dict):
                rows = [rows]
            rows = [r for r in rows if r.get("stck_cntg_hour") and str(r.get("stck_bsop_date", want)) == want]
            for r in rows:
                minute = kst_at(day, str(r["stck_cntg_hour"])).replace(second=0)
                bars.setdefault(minute, MinuteBar(
                    minute, abs_price(r.get("stck_oprc", 0)), abs_price(r.get("stck_hgpr", 0)), abs_price(r.get("stck_lwpr", 0)),
                    abs_price(r.get("stck_prpr", 0)), to_int(r.get("cntg_vol", 0)),
                ))
            if len(rows) < page_rows:
                break
            oldest = min(kst_at(day, str(r["stck_cntg_hour"])) for r in rows).replace(second=0) - timedelta(minutes=1)
            if oldest.time() < SESSION_FLOOR or oldest.date() != day:
                break
            hour = oldest.strftime("%H%M%S")
        return [bars[m] for m in sorted(bars)]

    def trades_today(self, symbol: str, day: date, start: datetime, end: datetime, venue: Venue = "KRX") -> list[BrokerTrade]:
        """Today's trades of one venue with start <= ts < end (FHPST01060000), oldest first;
        each carries the venue (the answer has no venue column: the market code asked decides).

        Pages backwards from ``end``: each next page asks again from the oldest second seen,
        so trades sharing a second are never cut between pages (rows are told apart by
        their cumulative volume, which is unique per trade).
        """
        path, tr_id = TODAY_TRADES
        seen: dict[int, BrokerTrade] = {}
        cursor = (end - timedelta(seconds=1)).astimezone(KST)
        while True:
            params = {"FID_COND_MRKT_DIV_CODE": MARKET_CODES[venue], "FID_INPUT_ISCD": symbol, "FID_INPUT_HOUR_1": cursor.strftime("%H%M%S")}
            rows = self.get(path, tr_id, params).body.get("output2") or []
            if isinstance(rows, dict):  # documented as an object, arrives as an array
                rows = [rows]
            rows = [r for r in rows if r.get("stck_cntg_hour")]
            if not rows:
                break
            new = 0
            oldest = None
            for r in rows:
                trade = BrokerTrade(kst_at(day, str(r["stck_cntg_hour"])), abs_price(r.get("stck_pbpr") or r.get("stck_prpr")),
                                    to_int(r.get("cnqn", 0)), to_int(r.get("acml_vol", 0)), venue)
                oldest = trade.ts if oldest is None or trade.ts < oldest else oldest
                if trade.cum_volume not in seen:
                    seen[trade.cum_volume] = trade
                    new += 1
            assert oldest is not None
            if oldest < start:
                break
            # ask again from the oldest second (its other trades may not have fit), or step
            # one second back when the page brought nothing new (a second fuller than a page)
            cursor = oldest if new else oldest - timedelta(seconds=1)
            if cursor < start or cursor.time() < SESSION_FLOOR:
                break
        trades = [t for t in seen.values() if start <= t.ts < end]
        trades.sort(key=lambda t: t.cum_volume or 0)
        return trades
