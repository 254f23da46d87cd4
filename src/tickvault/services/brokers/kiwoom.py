"""Kiwoom REST API client: token (au10001), chart TRs (ka10080 minutes, ka10079 ticks), the
venue-tagged trade list (ka10003) and NXT eligibility (ka10099 / ka10100 ``nxtEnable``).
A venue is chosen by the item: ``005930`` KRX, ``005930_NX`` NXT.

Every call is a POST of JSON with ``api-id`` and ``authorization`` headers; continuation
goes through the response headers ``cont-yn``/``next-key``, sent back on the next call.
Errors come as ``return_code`` != 0 in the body: 1700 means too many requests (HTTP 429),
8005 and friends mean the token must be issued again. The token is cached on disk like
KIS's (0600) and held as a secret; messages are scrubbed of keys and tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import httpx

from ...core.config import Settings
from ...core.wire import KST, Venue
from .common import BrokerTrade, MinuteBar, Scrubber, abs_price, backoff, kst_at, parse_compact, request_with_retries, to_int
from .errors import BrokerAuthError, BrokerError, BrokerRateLimited
from .ratelimit import TokenBucket
from .session import BrokerSession
from .tokencache import CachedToken

log = logging.getLogger(__name__)

REAL_URL = "https://api.kiwoom.com"
TOKEN_PATH = "/oauth2/token"
CHART_PATH = "/api/dostk/chart"
STOCK_INFO_PATH = "/api/dostk/stkinfo"
#: ka10099 market codes listed for the NXT universe: 0 KOSPI, 10 KOSDAQ.
LISTED_MARKETS = ("0", "10")
#: The item suffix of each venue on charts, ka10003 and the WebSocket (``_AL``, SOR, is no venue).
ITEM_SUFFIX: dict[Venue, str] = {"KRX": "", "NXT": "_NX"}
#: ka10003 ``stex_tp`` per trade.
STEX_VENUES: dict[str, Venue] = {"KRX": "KRX", "NXT": "NXT"}
RATE_LIMITED = 1700
TOKEN_ERRORS = frozenset({8001, 8002, 8003, 8005, 8006, 8009, 8010, 8011, 8012, 8015, 8016, 8020, 8030, 8031, 8040, 8050, 8103})
MAX_PAGES = 10_000


@dataclass
class KiwoomPage:
    body: dict[str, Any]
    cont: bool
    next_key: str


class KiwoomClient(BrokerSession):
    """Thread-safe Kiwoom REST client for one app key."""

    broker = "kiwoom"

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if settings.kiwoom_appkey is None or settings.kiwoom_secretkey is None:
            raise BrokerAuthError("kiwoom", "no credentials: set TICKVAULT_KIWOOM_APPKEY and TICKVAULT_KIWOOM_SECRETKEY")
        self._appkey = settings.kiwoom_appkey
        self._secretkey = settings.kiwoom_secretkey
        self.base_url = settings.kiwoom_base_url.rstrip("/")
        self.ws_url = settings.kiwoom_ws_url
        self.bucket = TokenBucket(settings.kiwoom_rate_per_s, sleep=sleep)
        self.retries = settings.broker_max_retries
        self._sleep = sleep
        self._open_session(settings, self.base_url, self._appkey.get_secret_value(), transport)
        self._scrub = Scrubber(lambda: (self._appkey, self._secretkey, self._token.value if self._token else None))

    def __repr__(self) -> str:
        return f"KiwoomClient(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ auth
    def token(self) -> str:
        """A valid access token (au10001): memory, else disk cache, else freshly issued."""
        return self._current_token()

    def _issue_token(self) -> CachedToken:
        payload = {"grant_type": "client_credentials", "appkey": self._appkey.get_secret_value(),
                   "secretkey": self._secretkey.get_secret_value()}
        for attempt in range(self.retries + 1):
            response = request_with_retries(
                "kiwoom", lambda: self._http.post(TOKEN_PATH, json=payload, headers={"Content-Type": "application/json;charset=UTF-8", "api-id": "au10001"}),
                self.retries, self._sleep,
            )
            body = self._json(response)
            self.stats.token_issues += 1
            code = _code(body)
            if code == 0 and body.get("token"):
                expires = _expiry(body)
                log.info("kiwoom: issued a new access token (valid until %s)", expires.astimezone(KST).isoformat())
                return CachedToken(str(body["token"]), expires)
            if (code == RATE_LIMITED or response.status_code == 429) and attempt < self.retries:
                self._sleep(backoff(attempt))
                continue
            reason = body.get("return_msg") or response.reason_phrase
            raise BrokerAuthError("kiwoom", self._scrub(f"token not issued: {reason}; check TICKVAULT_KIWOOM_APPKEY/SECRETKEY and the base URL"),
                                  str(code) if code is not None else None, response.status_code)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ calls
    def post(self, path: str, api_id: str, body: dict[str, str], next_key: str = "") -> KiwoomPage:
        """One TR call (one page): rate-limited, retried on 1700, token re-issued once on 8005 etc."""
        reissued = False
        for attempt in range(self.retries + 1):
            self.bucket.acquire()
            headers = {
                "Content-Type": "application/json;charset=UTF-8",
                "api-id": api_id,
                "authorization": f"Bearer {self.token()}",
            }
            if next_key:
                headers["cont-yn"] = "Y"
                headers["next-key"] = next_key
            response = request_with_retries("kiwoom", partial(self._http.post, path, json=body, headers=headers), self.retries, self._sleep)
            self.stats.calls += 1
            self.stats.by_tr[api_id] = self.stats.by_tr.get(api_id, 0) + 1
            data = self._json(response)
            code = _code(data)
            if response.status_code == 200 and code == 0:
                return KiwoomPage(data, response.headers.get("cont-yn", "N").upper() == "Y", response.headers.get("next-key", ""))
            if code == RATE_LIMITED or response.status_code == 429:
                self.stats.rate_retries += 1
                delay = backoff(attempt, base=1.0 / self.bucket.rate + 0.05)
                log.warning("kiwoom: rate limit (1700) on %s; retrying in %.2fs", api_id, delay)
                self.bucket.penalize(delay)
                continue
            if (code in TOKEN_ERRORS or response.status_code == 401) and not reissued:
                log.warning("kiwoom: token refused (%s); issuing a new one", code)
                self.stats.token_reissues += 1
                self.invalidate_token()
                reissued = True
                continue
            if code is None and response.status_code >= 500 and attempt < self.retries:
                self._sleep(backoff(attempt))
                continue
            message = str(data.get("return_msg") or response.reason_phrase or "call failed")
            error = BrokerAuthError if (code in TOKEN_ERRORS or response.status_code == 401) else BrokerError
            raise error("kiwoom", self._scrub(f"{api_id}: {message}"), str(code) if code is not None else None, response.status_code)
        raise BrokerRateLimited("kiwoom", f"{api_id}: still refused for rate after {self.retries + 1} attempts; lower kiwoom_rate_per_s", str(RATE_LIMITED))

    def pages(self, path: str, api_id: str, body: dict[str, str]) -> Iterator[KiwoomPage]:
        """All pages of a TR, following cont-yn/next-key."""
        next_key = ""
        for _ in range(MAX_PAGES):
            page = self.post(path, api_id, body, next_key)
            yield page
            if not page.cont or not page.next_key:
                return
            next_key = page.next_key
        raise BrokerError("kiwoom", f"{api_id}: more than {MAX_PAGES} pages; giving up")

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            # the 429 answer is plain text like "...[1700:...]"
            text = response.text
            if "1700" in text or response.status_code == 429:
                return {"return_code": RATE_LIMITED, "return_msg": "too many requests"}
            if response.status_code >= 500:
                return {}
            raise BrokerError("kiwoom", self._scrub(f"non-JSON answer from {response.request.url.path}: {text[:120]!r}"), status=response.status_code) from None
        return body if isinstance(body, dict) else {}

    # ------------------------------------------------------------------ endpoints
    def nxt_enabled(self, symbols: Iterable[str]) -> dict[str, bool]:
        """Which of ``symbols`` trade on NXT (``nxtEnable`` Y): the market lists (ka10099,
        KOSPI and KOSDAQ) first, one ka10100 call per symbol they do not list. A symbol
        neither knows is left out of the answer (unknown, not "no")."""
        wanted = set(symbols)
        found: dict[str, bool] = {}
        for market in LISTED_MARKETS:
            for page in self.pages(STOCK_INFO_PATH, "ka10099", {"mrkt_tp": market}):
                for row in page.body.get("list") or []:
                    code = str(row.get("code", ""))
                    if code in wanted:
                        found[code] = str(row.get("nxtEnable", "")).upper() == "Y"
        for code in sorted(wanted - set(found)):
            try:
                body = self.post(STOCK_INFO_PATH, "ka10100", {"stk_cd": code}).body
            except (BrokerAuthError, BrokerRateLimited):
                raise
            except BrokerError as exc:
                log.warning("kiwoom: ka10100 knows no %s (%s); its NXT status stays unknown", code, exc)
                continue
            if body.get("code"):
                found[code] = str(body.get("nxtEnable", "")).upper() == "Y"
        return found

    def minute_bars(self, symbol: str, day: date, venue: Venue = "KRX") -> list[MinuteBar]:
        """One day's one-minute bars of one venue (ka10080, item ``CODE`` / ``CODE_NX``), all
        pages; rows of other days are ignored."""
        bars: dict[datetime, MinuteBar] = {}
        body = {"stk_cd": symbol + ITEM_SUFFIX[venue], "tic_scope": "1", "upd_stkpc_tp": "1", "base_dt": day.strftime("%Y%m%d")}
        for page in self.pages(CHART_PATH, "ka10080", body):
            rows = page.body.get("stk_min_pole_chart_qry") or []
            older = False
            for r in rows:
                ts = parse_compact(str(r["cntr_tm"]))
                if ts.date() != day:
                    older = older or ts.date() < day
                    continue
                minute = ts.replace(second=0)
                bars.setdefault(minute, MinuteBar(minute, abs_price(r.get("open_pric", 0)), abs_price(r.get("high_pric", 0)),
                                                  abs_price(r.get("low_pric", 0)), abs_price(r.get("cur_prc", 0)), to_int(r.get("trde_qty", 0))))
            if older:
                break
        return [bars[m] for m in sorted(bars)]

    def trades_back_to(self, symbol: str, day: date, since: datetime, venue: Venue = "KRX") -> list[BrokerTrade]:
        """Today's trades of one venue (ka10079, item ``CODE`` / ``CODE_NX``, one row per
        trade) from the newest back to ``since``, oldest first.

        The TR has no date or time parameter: it pages backwards from the newest trade, so
        one pass per symbol reaches back to the earliest window needed. Rows carry no
        cumulative volume (``cum_volume`` is None); the planner anchors it.
        """
        rows_out: list[BrokerTrade] = []
        body = {"stk_cd": symbol + ITEM_SUFFIX[venue], "tic_scope": "1", "upd_stkpc_tp": "1"}
        for page in self.pages(CHART_PATH, "ka10079", body):
            rows = page.body.get("stk_tic_chart_qry") or []
            done = False
            for r in rows:
                ts = parse_compact(str(r["cntr_tm"]))
                if ts.date() != day:
                    done = done or ts.date() < day
                    continue
                rows_out.append(BrokerTrade(ts, abs_price(r.get("cur_prc", 0)), abs(to_int(r.get("trde_qty", 0))), venue=venue))
                if ts < since:
                    done = True
            if done or not rows:
                break
        rows_out.reverse()  # the broker lists newest first; within a second, later trades first
        return rows_out

    def venue_trades_back_to(self, symbol: str, day: date, since: datetime, venue: Venue) -> list[BrokerTrade]:
        """Today's trades of one venue from ka10003 (체결정보, item ``CODE`` / ``CODE_NX``),
        newest back to ``since``, oldest first. Each row carries ``stex_tp`` — the venue that
        executed it — and ``acc_trde_qty``, that venue's cumulative day volume; a row tagged
        with another venue (통합 or the other market) is refused, not relabelled."""
        rows_out: list[BrokerTrade] = []
        foreign = 0
        for page in self.pages(STOCK_INFO_PATH, "ka10003", {"stk_cd": symbol + ITEM_SUFFIX[venue]}):
            rows = page.body.get("cntr_infr") or []
            done = False
            for r in rows:
                ts = kst_at(day, str(r.get("tm", "")))
                if STEX_VENUES.get(str(r.get("stex_tp", "")).strip().upper()) != venue:
                    foreign += 1
                    continue
                rows_out.append(BrokerTrade(ts, abs_price(r.get("cur_prc", 0)), abs(to_int(r.get("cntr_trde_qty", 0))),
                                            abs(to_int(r.get("acc_trde_qty", 0))), venue))
                if ts < since:
                    done = True
            if done or not rows:
                break
        if foreign:
            log.warning("kiwoom: ka10003 %s%s listed %d trade(s) of another venue (stex_tp); left out", symbol, ITEM_SUFFIX[venue], foreign)
        rows_out.reverse()
        return rows_out


def _code(body: dict[str, Any]) -> int | None:
    value = body.get("return_code")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _expiry(body: dict[str, Any]) -> datetime:
    text = str(body.get("expires_dt") or "")
    try:
        return parse_compact(text)
    except ValueError:
        return datetime.now(UTC) + timedelta(hours=23)
