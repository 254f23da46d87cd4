"""Stand-in of the Kiwoom REST API (au10001 token, ka10080 minute chart, ka10079 tick chart,
ka10003 trade list, ka10099 / ka10100 stock info).

The item picks the venue as Kiwoom documents: ``005930`` KRX, ``005930_NX`` NXT (the truth's
NXT rows); ``_AL`` (SOR) is not served. ka10003 tags each trade with ``stex_tp`` and lists
``acc_trde_qty``, the venue's cumulative volume. ka10099 (``mrkt_tp`` 0 KOSPI / 10 KOSDAQ)
and ka10100 answer ``nxtEnable`` from ``nxt_listed``; ``list_omits`` are symbols only
ka10100 knows. A ``mock`` server (KRX only, like mockapi) refuses ``_NX`` items.

Every call is a POST of JSON; headers ``api-id``, ``authorization: Bearer`` and a JSON
content type are checked. Continuation follows the documented headers: the answer carries
``cont-yn: Y`` and an opaque ``next-key`` that the next call must send back with
``cont-yn: Y``. Errors are ``return_code`` bodies: 1700 with HTTP 429 for rate, 8005 with
HTTP 401 for a bad or expired token. Prices are signed (minus below the reference price).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from tickvault.core.wire import KST

from .broker_http import Reply, Request, StandinServer, TruthTrade, minute_bars

CHART = "/api/dostk/chart"
STKINFO = "/api/dostk/stkinfo"
SUFFIX_VENUES = {"": "KRX", "_NX": "NXT"}


def _signed(price: int, base: int) -> str:
    return f"-{price}" if price < base else (f"+{price}" if price > base else str(price))


class KiwoomRestStandin(StandinServer):
    def __init__(self, truth: pa.Table, day: date, appkey: str, secretkey: str, *, rate_limit: float = 5,
                 page_rows: int = 900, mock: bool = False, nxt_listed: Collection[str] | None = None,
                 kosdaq: Collection[str] = (), list_omits: Collection[str] = ()):
        super().__init__(truth, day, rate_limit)
        self.appkey = appkey
        self.secretkey = secretkey
        self.page_rows = page_rows
        self.mock = mock
        self.nxt_listed = set(self.venue_trades["NXT"]) if nxt_listed is None else set(nxt_listed)
        self.kosdaq = set(kosdaq)
        self.list_omits = set(list_omits)
        self.known = sorted(set(self.trades) | self.nxt_listed)

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, {"return_code": 2, "return_msg": "POST only"})
        if not request.headers.get("content-type", "").lower().startswith("application/json"):
            return Reply(400, {"return_code": 1501, "return_msg": "Content-Type must be application/json"})
        if request.path == "/oauth2/token":
            return self._token(request)
        if request.path in (CHART, STKINFO):
            return self._chart(request)
        return Reply(404, {"return_code": 1504, "return_msg": "no such URI"})

    def _token(self, request: Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("grant_type") != "client_credentials" or body.get("appkey") != self.appkey or body.get("secretkey") != self.secretkey:
            return Reply(200, {"return_code": 3, "return_msg": "[8030:투자구분(실전/모의)이 달라서 AppKey를 사용할 수 없습니다]"})
        token = self.new_token()
        expires = (datetime.now(KST) + timedelta(days=1)).strftime("%Y%m%d%H%M%S")
        return Reply(200, {"expires_dt": expires, "token_type": "bearer", "token": token, "return_code": 0, "return_msg": "정상적으로 처리되었습니다"})

    def _chart(self, request: Request) -> Reply:
        h = request.headers
        api_id = h.get("api-id", "")
        self.count_call(api_id)
        if self.reject_for_rate(self.appkey) or self.take_injected_rate_error():
            return Reply(429, {"return_code": 1700, "return_msg": "허용된 요청 개수를 초과하였습니다[1700:API ID=" + api_id + "]"})
        auth = h.get("authorization", "")
        state = self.token_state(auth[7:]) if auth.startswith("Bearer ") else "unknown"
        if state != "ok":
            return Reply(401, {"return_code": 3, "return_msg": "[8005:Token이 유효하지 않습니다]"})
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == STKINFO:
            return self._stkinfo(request, api_id, body)
        symbol = str(body.get("stk_cd", ""))
        if body.get("upd_stkpc_tp") not in ("0", "1") or not symbol:
            return Reply(200, {"return_code": 2, "return_msg": "[1511:필수 입력 값에 값이 존재하지 않습니다]"})
        trades = self._venue_trades(symbol)
        if trades is None:
            return Reply(200, {"return_code": 2, "return_msg": f"[1901:시장 코드값이 존재하지 않습니다: {symbol}]"})
        if api_id == "ka10080":
            if body.get("tic_scope") != "1":
                return Reply(200, {"return_code": 2, "return_msg": "this stand-in serves tic_scope 1 only"})
            base_dt = str(body.get("base_dt", ""))
            bars = minute_bars(trades) if base_dt in ("", self.day.strftime("%Y%m%d")) else []
            rows = [self._bar_row(b, trades) for b in reversed(bars)]
            return self._paged(request, api_id, symbol, rows, "stk_min_pole_chart_qry")
        if api_id == "ka10079":
            if body.get("tic_scope") != "1":
                return Reply(200, {"return_code": 2, "return_msg": "this stand-in serves tic_scope 1 only"})
            rows = [self._tick_row(t, trades) for t in reversed(trades)]
            return self._paged(request, api_id, symbol, rows, "stk_tic_chart_qry")
        return Reply(200, {"return_code": 2, "return_msg": f"[1504:해당 URI에서는 지원하는 API ID가 아닙니다: {api_id}]"})

    def _venue_trades(self, item: str) -> list[TruthTrade] | None:
        """The trades of an item (``CODE`` / ``CODE_NX``); None for an item this server refuses."""
        code, suffix = item[:6], item[6:]
        venue = SUFFIX_VENUES.get(suffix)
        if venue is None or (venue == "NXT" and self.mock):
            return None
        return self.venue_trades[venue].get(code, [])

    def _stkinfo(self, request: Request, api_id: str, body: dict[str, Any]) -> Reply:
        if api_id == "ka10099":
            market = str(body.get("mrkt_tp", ""))
            if market not in ("0", "10"):
                return Reply(200, {"return_code": 2, "return_msg": "this stand-in lists mrkt_tp 0 and 10 only"})
            codes = [c for c in self.known if c not in self.list_omits and (c in self.kosdaq) == (market == "10")]
            rows = [self._info_row(c) for c in codes]
            return self._paged(request, api_id, market, rows, "list")
        symbol = str(body.get("stk_cd", ""))
        if api_id == "ka10100":
            if symbol not in self.known:
                return Reply(200, {"return_code": 2, "return_msg": "[2000:조회할 종목이 없습니다]"})
            return Reply(200, {**self._info_row(symbol), "return_code": 0, "return_msg": "정상적으로 처리되었습니다"})
        if api_id == "ka10003":
            trades = self._venue_trades(symbol)
            if trades is None:
                return Reply(200, {"return_code": 2, "return_msg": f"[1901:시장 코드값이 존재하지 않습니다: {symbol}]"})
            venue = "NXT" if symbol.endswith("_NX") else "KRX"
            base = trades[0].price if trades else 0
            rows = [{"tm": t.ts.strftime("%H%M%S"), "cur_prc": _signed(t.price, base), "pred_pre": str(t.price - base),
                     "pre_rt": "0.00", "pri_sel_bid_unit": str(t.price), "pri_buy_bid_unit": str(t.price),
                     "cntr_trde_qty": str(t.volume), "sign": "3", "acc_trde_qty": str(t.cum_volume),
                     "acc_trde_prica": str(t.cum_volume * t.price), "cntr_str": "100.00", "stex_tp": venue}
                    for t in reversed(trades)]
            return self._paged(request, api_id, symbol, rows, "cntr_infr")
        return Reply(200, {"return_code": 2, "return_msg": f"[1504:해당 URI에서는 지원하는 API ID가 아닙니다: {api_id}]"})

    def _info_row(self, code: str) -> dict[str, Any]:
        return {"code": code, "name": f"종목{code}", "listCount": "1000000", "auditInfo": "정상", "regDay": "20000101",
                "lastPrice": "50000", "state": "증거금20%", "marketCode": "10" if code in self.kosdaq else "0",
                "marketName": "코스닥" if code in self.kosdaq else "거래소", "upName": "", "upSizeName": "", "companyClassName": "",
                "orderWarning": "0", "nxtEnable": "Y" if code in self.nxt_listed else "N"}

    def _paged(self, request: Request, api_id: str, symbol: str, rows: list[dict[str, Any]], list_name: str) -> Reply:
        h = request.headers
        offset = 0
        if h.get("cont-yn") == "Y":
            try:
                state = json.loads(base64.b64decode(h.get("next-key", "")))
                assert state["api"] == api_id and state["stk"] == symbol
                offset = int(state["off"])
            except Exception:  # noqa: BLE001 - a malformed continuation key is refused, as Kiwoom does
                return Reply(200, {"return_code": 2, "return_msg": "[1517:next-key가 유효하지 않습니다]"})
        page = rows[offset : offset + self.page_rows]
        more = offset + self.page_rows < len(rows)
        headers = {"api-id": api_id, "cont-yn": "Y" if more else "N", "next-key": ""}
        if more:
            headers["next-key"] = base64.b64encode(json.dumps({"api": api_id, "stk": symbol, "off": offset + self.page_rows}).encode()).decode()
        return Reply(200, {"stk_cd": symbol, list_name: page, "return_code": 0, "return_msg": "정상적으로 처리되었습니다"}, headers)

    @staticmethod
    def _bar_row(bar: dict[str, Any], trades: list[TruthTrade]) -> dict[str, Any]:
        base = trades[0].price
        return {
            "cur_prc": _signed(bar["close"], base),
            "trde_qty": str(bar["volume"]),
            "cntr_tm": bar["minute"].strftime("%Y%m%d%H%M%S"),
            "open_pric": _signed(bar["open"], base),
            "high_pric": _signed(bar["high"], base),
            "low_pric": _signed(bar["low"], base),
            "upd_stkpc_tp": "", "upd_rt": "", "bic_inds_tp": "", "sm_inds_tp": "", "stk_infr": "", "upd_stkpc_event": "",
            "pred_close_pric": "",
        }

    @staticmethod
    def _tick_row(t: TruthTrade, trades: list[TruthTrade]) -> dict[str, Any]:
        base = trades[0].price
        return {
            "cur_prc": _signed(t.price, base),
            "trde_qty": str(t.volume),
            "cntr_tm": t.ts.strftime("%Y%m%d%H%M%S"),
            "open_pric": _signed(t.price, base),
            "high_pric": _signed(t.price, base),
            "low_pric": _signed(t.price, base),
            "upd_stkpc_tp": "", "upd_rt": "", "bic_inds_tp": "", "sm_inds_tp": "", "stk_infr": "", "upd_stkpc_event": "",
            "pred_close_pric": "",
            "pred_pre": str(t.price - base),
            "pred_pre_sig": "2" if t.price > base else ("5" if t.price < base else "3"),
        }
