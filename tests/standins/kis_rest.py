"""Stand-in of the KIS Open API REST server (tokens, approval key, quotation TRs, stock info).

Speaks the documented formats: JSON token/approval bodies; quotation GETs must carry
``authorization: Bearer``, ``appkey``, ``appsecret``, the right ``tr_id`` and ``custtype: P``;
answers are ``rt_cd/msg_cd/msg1`` envelopes, errors with HTTP 500 like the real server
(EGW00201 rate, EGW00123 expired token, EGW00121 unknown token). Token issuing is limited
(EGW00133, HTTP 403). Data come from a truth day: today = ``day``. ``FID_COND_MRKT_DIV_CODE``
picks the venue: ``J`` KRX, ``NX`` NXT (the truth's NXT rows; same output fields, no venue
column); a ``paper`` server refuses ``NX`` (NXT is not served to paper accounts; the exact
refusal is not documented). search-stock-info (CTPF1002R) answers ``cptt_trad_tr_psbl_yn``
(NXT 거래종목) and ``nxt_tr_stop_yn`` (NXT 거래정지) from ``nxt_listed`` / ``nxt_halted``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from tickvault.core.wire import KST

from .broker_http import Reply, Request, StandinServer, TruthTrade, minute_bars

QUOTES = "/uapi/domestic-stock/v1/quotations"
TRS = {
    f"{QUOTES}/inquire-time-itemchartprice": "FHKST03010200",
    f"{QUOTES}/inquire-time-dailychartprice": "FHKST03010230",
    f"{QUOTES}/inquire-time-itemconclusion": "FHPST01060000",
    f"{QUOTES}/inquire-price": "FHKST01010100",
    f"{QUOTES}/inquire-daily-price": "FHKST01010400",
    f"{QUOTES}/search-stock-info": "CTPF1002R",
}
MARKET_VENUES = {"J": "KRX", "NX": "NXT"}
TODAY_BAR_ROWS = 30
DAY_BAR_ROWS = 120
TRADE_ROWS = 30


def _err(code: str, msg: str, status: int = 500) -> Reply:
    return Reply(status, {"rt_cd": "1", "msg_cd": code, "msg1": msg})


class KisRestStandin(StandinServer):
    def __init__(self, truth: pa.Table, day: date, appkey: str, appsecret: str, *, rate_limit: float = 20,
                 token_interval_s: float = 0.0, output2_as_object: bool = False, paper: bool = False,
                 nxt_listed: Collection[str] | None = None, nxt_halted: Collection[str] = (), listed: Collection[str] = ()):
        super().__init__(truth, day, rate_limit)
        self.paper = paper
        self.listed = set(listed) | set(self.trades)  # the symbols search-stock-info knows (plus the NXT-listed)
        self.nxt_listed = set(self.venue_trades["NXT"]) if nxt_listed is None else set(nxt_listed)
        self.nxt_halted = set(nxt_halted)
        self.appkey = appkey
        self.appsecret = appsecret
        self.token_interval_s = token_interval_s  # the real server allows about one issue per 60 s
        self.output2_as_object = output2_as_object  # the documented (single object) form
        self.approval_issues = 0
        self._last_issue: datetime | None = None

    # ------------------------------------------------------------------ routing
    def handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/oauth2/tokenP":
            return self._token(request)
        if request.method == "POST" and request.path == "/oauth2/Approval":
            return self._approval(request)
        if request.method == "GET" and request.path in TRS:
            return self._quotation(request)
        return Reply(404, {"rt_cd": "1", "msg_cd": "EGW00002", "msg1": "no such service"})

    def _token(self, request: Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("grant_type") != "client_credentials" or body.get("appkey") != self.appkey or body.get("appsecret") != self.appsecret:
            return Reply(403, {"error_description": "유효하지 않은 AppKey입니다.", "error_code": "EGW00103"})
        now = datetime.now(KST)
        if self._last_issue is not None and (now - self._last_issue).total_seconds() < self.token_interval_s:
            return Reply(403, {"error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)", "error_code": "EGW00133"})
        self._last_issue = now
        token = self.new_token()
        expires = (now + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 86400, "access_token_token_expired": expires})

    def _approval(self, request: Request) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("grant_type") != "client_credentials" or body.get("appkey") != self.appkey or body.get("secretkey") != self.appsecret:
            return Reply(403, {"error_description": "유효하지 않은 AppKey입니다.", "error_code": "EGW00103"})
        self.approval_issues += 1
        return Reply(200, {"approval_key": f"apv-{self.approval_issues:04d}-{self.new_token()[:16]}"})

    def _quotation(self, request: Request) -> Reply:
        h = request.headers
        tr_id = TRS[request.path]
        self.count_call(tr_id)
        if h.get("appkey") != self.appkey or h.get("appsecret") != self.appsecret:
            return _err("EGW00103", "유효하지 않은 AppKey입니다.")
        if self.reject_for_rate(self.appkey):
            return _err("EGW00201", "초당 거래건수를 초과하였습니다.")
        if self.take_injected_rate_error():
            return _err("EGW00201", "초당 거래건수를 초과하였습니다.")
        auth = h.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _err("EGW00205", "credentials_type이 유효하지 않습니다.(Bearer)")
        state = self.token_state(auth[7:])
        if state == "expired":
            return _err("EGW00123", "기간이 만료된 token 입니다.")
        if state != "ok":
            return _err("EGW00121", "유효하지 않은 token 입니다.")
        if h.get("tr_id") != tr_id:
            return _err("OPSQ0002", "없는 서비스 코드 입니다")
        if h.get("custtype") != "P":
            return _err("OPSQ2000", "ERROR : INPUT INVALID_CHECK_ACNO (custtype)")
        q = request.query
        if tr_id == "CTPF1002R":
            return self._stock_info(q)
        venue = MARKET_VENUES.get(q.get("FID_COND_MRKT_DIV_CODE", ""))
        if venue is None:
            return _err("OPSQ2001", "ERROR : INPUT_FIELD_NAME FID_COND_MRKT_DIV_CODE")
        if venue == "NXT" and self.paper:
            return _err("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.")
        trades = self.venue_trades[venue].get(q.get("FID_INPUT_ISCD", ""), [])
        if tr_id == "FHKST01010100":
            return self._price(trades)
        if tr_id == "FHKST01010400":
            return self._daily(trades)
        hour = q.get("FID_INPUT_HOUR_1", "")
        if len(hour) != 6 or not hour.isdigit():
            return _err("OPSQ2001", "ERROR : INPUT_FIELD_NAME FID_INPUT_HOUR_1")
        until = datetime(self.day.year, self.day.month, self.day.day, int(hour[:2]), int(hour[2:4]), int(hour[4:]), tzinfo=KST)
        if tr_id == "FHKST03010200":
            return self._bars(trades, until, TODAY_BAR_ROWS)
        if tr_id == "FHKST03010230":
            if q.get("FID_INPUT_DATE_1") != self.day.strftime("%Y%m%d"):
                return Reply(200, {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output1": {}, "output2": []})
            return self._bars(trades, until, DAY_BAR_ROWS)
        return self._trades(trades, until)

    def _stock_info(self, q: dict[str, str]) -> Reply:
        code = q.get("PDNO", "")
        if q.get("PRDT_TYPE_CD") != "300":
            return _err("OPSQ2001", "ERROR : INPUT_FIELD_NAME PRDT_TYPE_CD")
        if code not in self.listed and code not in self.nxt_listed:
            return Reply(200, {"rt_cd": "1", "msg_cd": "KIOK0560", "msg1": "조회할 자료가 없습니다", "output": {}})
        output = {"pdno": code, "prdt_type_cd": "300", "prdt_abrv_name": f"종목{code}", "mket_id_cd": "STK",
                  "cptt_trad_tr_psbl_yn": "Y" if code in self.nxt_listed else "N",
                  "nxt_tr_stop_yn": "Y" if code in self.nxt_halted else "N"}
        return Reply(200, {"rt_cd": "0", "msg_cd": "KIOK0000", "msg1": "정상처리 되었습니다", "output": output})

    def _price(self, trades: list[TruthTrade]) -> Reply:
        last = trades[-1] if trades else None
        output = {"stck_prpr": str(last.price) if last else "0", "acml_vol": str(last.cum_volume) if last else "0",
                  "stck_oprc": str(trades[0].price) if trades else "0"}
        return Reply(200, {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output": output})

    def _daily(self, trades: list[TruthTrade]) -> Reply:
        rows = []
        if trades:
            rows.append({"stck_bsop_date": self.day.strftime("%Y%m%d"), "stck_clpr": str(trades[-1].price),
                         "acml_vol": str(trades[-1].cum_volume), "stck_oprc": str(trades[0].price)})
        earlier = self.day - timedelta(days=1)
        rows.append({"stck_bsop_date": earlier.strftime("%Y%m%d"), "stck_clpr": "1000", "acml_vol": "12345", "stck_oprc": "1000"})
        return Reply(200, {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output": rows})

    def _bars(self, trades: list[TruthTrade], until: datetime, rows: int) -> Reply:
        limit = until.replace(second=0)
        bars = [b for b in minute_bars(trades) if b["minute"] <= limit]
        page = list(reversed(bars))[:rows]
        out = [
            {
                "stck_bsop_date": b["minute"].strftime("%Y%m%d"),
                "stck_cntg_hour": b["minute"].strftime("%H%M%S"),
                "stck_prpr": str(b["close"]),
                "stck_oprc": str(b["open"]),
                "stck_hgpr": str(b["high"]),
                "stck_lwpr": str(b["low"]),
                "cntg_vol": str(b["volume"]),
                "acml_tr_pbmn": str(b["turnover"]),
            }
            for b in page
        ]
        return Reply(200, {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output1": {}, "output2": out})

    def _trades(self, trades: list[TruthTrade], until: datetime) -> Reply:
        eligible = [t for t in trades if t.ts <= until]
        page = list(reversed(eligible))[:TRADE_ROWS]
        base = trades[0].price if trades else 0
        out: list[dict[str, Any]] = []
        for t in page:
            diff = t.price - base
            out.append({
                "stck_cntg_hour": t.ts.strftime("%H%M%S"),
                "stck_pbpr": str(t.price),
                "prdy_vrss": str(diff),
                "prdy_vrss_sign": "2" if diff > 0 else ("5" if diff < 0 else "3"),
                "prdy_ctrt": "0.00",
                "askp": str(t.price),
                "bidp": str(t.price),
                "tday_rltv": "100.00",
                "acml_vol": str(t.cum_volume),
                "cnqn": str(t.volume),
            })
        output2: Any = out[0] if (self.output2_as_object and len(out) == 1) else out
        return Reply(200, {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output1": {}, "output2": output2})
