"""Daily recovery end to end: planted gaps in real PostgreSQL + DuckLake, repaired through each
broker's real client over HTTP against its stand-in."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import SecretStr

from standins.broker_http import index_truth, make_truth_day, minute_bars
from standins.kis_rest import KisRestStandin
from standins.kiwoom_rest import KiwoomRestStandin
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.wire import KST
from tickvault.services.recovery import recover
from tickvault.services.recovery.planner import today_kst
from tickvault.services.recovery.report import report_path
from tickvault.services.sync import verify
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

SYMBOLS = ["005930", "000660", "035720", "373220"]
KIS_KEY, KIS_SECRET = "PSrecoveryKisKey0123456789", "recoveryKisSecret/+=ZYXWVU98765"
KW_KEY, KW_SECRET = "kwRecoveryKey_1a2b3c", "kwRecoverySecret_4d5e6f"
KW_PAGE = 200


@pytest.fixture
def day() -> date:
    # the brokers list trades only for the current day, and the hot store keeps recent days
    return today_kst()


@pytest.fixture
def truth(day):
    return make_truth_day(day, SYMBOLS, 300, seed=11)


def with_brokers(settings: Settings, tmp_path, kis_url: str = "http://127.0.0.1:9", kw_url: str = "http://127.0.0.1:9") -> Settings:
    return settings.model_copy(update={
        "kis_appkey": SecretStr(KIS_KEY), "kis_appsecret": SecretStr(KIS_SECRET), "kis_base_url": kis_url,
        "kiwoom_appkey": SecretStr(KW_KEY), "kiwoom_secretkey": SecretStr(KW_SECRET), "kiwoom_base_url": kw_url,
        "broker_token_dir": tmp_path / "tokens",
    })


def key_rows(table: pa.Table) -> set[tuple]:
    cols = table.select(["symbol", "ts", "cum_volume", "volume", "price"]).to_pydict()
    return {(s, t, c, v, Decimal(p)) for s, t, c, v, p in zip(cols["symbol"], cols["ts"], cols["cum_volume"], cols["volume"], cols["price"])}


def plant(truth: pa.Table, day: date):
    """Lake and hot contents with the planted damage; returns (lake, hot, description)."""
    rows = truth.to_pylist()
    by_symbol = index_truth(truth)
    a, b, c, d = SYMBOLS
    # whole minutes missing from both stores: symbol a, the three busiest consecutive minutes after 10:00
    a_minutes = sorted({t.ts.replace(second=0) for t in by_symbol[a] if t.ts.hour >= 10})
    whole = set(a_minutes[3:6])
    # single ticks missing mid-minute (from both): symbol b, the middle trade of three same-second bursts
    bursts: list[int] = []
    trades_b = by_symbol[b]
    for i in range(1, len(trades_b) - 1):
        if trades_b[i - 1].ts == trades_b[i].ts == trades_b[i + 1].ts and (not bursts or trades_b[i].cum_volume > bursts[-1] + 50):
            bursts.append(trades_b[i].cum_volume)
    single = set(bursts[:3])
    assert len(single) == 3
    # the first trade of the day and the closing print missing (only the broker's bars show the latter);
    # symbol d lacks only its closing print: continuity cannot see it, the broker's day volume does
    first_c = by_symbol[c][0].cum_volume
    last_c = by_symbol[c][-1].cum_volume
    last_d = by_symbol[d][-1].cum_volume
    # ticks missing only from hot (a stretch of symbol c), and one only from the lake (symbol a)
    hot_only_missing = {t.cum_volume for t in by_symbol[c][100:110]}
    lake_only_missing = by_symbol[a][20].cum_volume

    def lost(r) -> bool:
        kst = r["ts"].astimezone(KST)
        return ((r["symbol"] == a and kst.replace(second=0) in whole) or (r["symbol"] == b and r["cum_volume"] in single)
                or (r["symbol"] == c and r["cum_volume"] in (first_c, last_c)) or (r["symbol"] == d and r["cum_volume"] == last_d))

    lake_rows = [r for r in rows if not lost(r) and not (r["symbol"] == a and r["cum_volume"] == lake_only_missing)]
    hot_rows = [r for r in rows if not lost(r) and not (r["symbol"] == c and r["cum_volume"] in hot_only_missing)]
    schema = truth.schema
    return pa.Table.from_pylist(lake_rows, schema), pa.Table.from_pylist(hot_rows, schema), {
        "whole_minutes": len(whole), "single": len(single), "hot_only": len(hot_only_missing),
    }


def load(settings: Settings, lake_t: pa.Table, hot_t: pa.Table) -> tuple[HotStore, Lake]:
    lake = Lake(settings)
    lake.init()
    lake.upsert(lake_t)
    hot = HotStore(settings)
    hot.init()
    hot.upsert(hot_t)
    return hot, lake


def assert_equal_truth(settings: Settings, day: date, truth: pa.Table, hot: HotStore, lake: Lake) -> None:
    start, end = trading_day_bounds(day)
    want = key_rows(truth)
    assert key_rows(lake.read_ticks(start, end)) == want
    assert key_rows(hot.read_ticks(start, end)) == want
    assert verify(settings, day).consistent


def kis_bar_calls(truth: pa.Table, symbols: list[str] = SYMBOLS) -> int:
    return sum(len(minute_bars(t)) // 30 + 1 for s, t in index_truth(truth).items() if s in symbols)


def kiwoom_bar_calls(truth: pa.Table) -> int:
    return sum(-(-len(minute_bars(t)) // KW_PAGE) for t in index_truth(truth).values())


def test_kis_repairs_planted_gaps_and_rerun_is_minimal(settings, tmp_path, day, truth, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    lake_t, hot_t, planted = plant(truth, day)
    hot, lake = load(settings, lake_t, hot_t)
    assert not verify(settings, day).consistent
    with KisRestStandin(truth, day, KIS_KEY, KIS_SECRET, rate_limit=20) as server:
        s = with_brokers(settings, tmp_path, kis_url=server.url)
        server.at_call(5, "expire")  # the token dies mid-run
        server.at_call(9, "rate")  # and the broker says "too many" once
        report = recover(s, day, broker="kis", today=day)
        assert report.complete, report.render()
        assert server.rejected == 0
        assert server.injected_rate_errors == 1 and server.token_issues == 2
        assert_equal_truth(settings, day, truth, hot, lake)
        start, end = trading_day_bounds(day)
        recovered = lake.read_ticks(start, end).filter(pc.equal(lake.read_ticks(start, end).column("source"), "recovery"))
        by_sym = {r.symbol: r for r in report.symbols}
        assert sum(r.ticks_recovered for r in report.symbols) == recovered.num_rows > 0
        assert by_sym[SYMBOLS[1]].ticks_recovered == planted["single"] and by_sym[SYMBOLS[1]].gaps_found == planted["single"]
        assert by_sym[SYMBOLS[2]].copied_to_hot == planted["hot_only"] and by_sym[SYMBOLS[0]].copied_to_lake == 1
        assert by_sym[SYMBOLS[2]].ticks_recovered == 2  # first trade of the day and the closing print
        trade_calls = server.calls_by_api.get("FHPST01060000", 0)
        assert 0 < trade_calls <= 12  # a few windows, not the whole day
        assert by_sym[SYMBOLS[3]].ticks_recovered == 1 and by_sym[SYMBOLS[3]].gaps_found == 0
        # the gap-free symbol: one day-volume call and its tail of trades, no bars;
        # the others: bars (two calls repeated somewhere: the expiry and the rate refusal)
        assert server.calls_by_api["FHKST01010100"] == 1
        gappy = SYMBOLS[:3]
        assert kis_bar_calls(truth, gappy) <= server.calls_by_api["FHKST03010200"] <= kis_bar_calls(truth, gappy) + 2
        # stored: JSON in the lake dir and a row per symbol in the hot table
        stored = json.loads(report_path(settings.lake_dir, day, "kis").read_text())
        assert stored["complete"] is True and stored["totals"]["ticks_recovered"] == recovered.num_rows
        with hot.connect() as conn:
            n = conn.execute(f'select count(*) from "{settings.pg_schema}".recovery_report where day = %s and complete', (day,)).fetchone()[0]
        assert n == len(SYMBOLS)

        # re-run: nothing to change, only the minute bars are read again
        server.reset_counters()
        again = recover(s, day, broker="kis", today=day)
        assert again.complete
        assert sum(r.ticks_recovered + r.copied_to_hot + r.copied_to_lake for r in again.symbols) == 0
        # re-run: continuity holds everywhere, so one day-volume call per symbol proves it complete
        assert server.calls_by_api == {"FHKST01010100": len(SYMBOLS)}, again.render()
        assert server.calls == again.calls["total"]
        assert server.rejected == 0
        assert_equal_truth(settings, day, truth, hot, lake)
        text = report.render() + json.dumps(report.to_dict()) + caplog.text + capsys.readouterr().err
    for secret in (KIS_KEY, KIS_SECRET):
        assert secret not in text
    hot.close(), lake.close()


def test_recorded_collector_gaps_join_the_repair(settings, tmp_path, day, truth, rclient):
    """A symbol whose whole day was lost in a dropped session is known only from its gap record:
    recovery checks it with the broker and fills it; the recorded windows are reported per symbol."""
    from tickvault.services.collectors import Gap, gaps_stream

    lost_symbol, watched, broken = SYMBOLS[3], SYMBOLS[0], SYMBOLS[1]
    late_tick = index_truth(truth)[broken][250].cum_volume  # a continuity gap in the afternoon: the bars path
    kept = truth.filter(pc.and_(pc.not_equal(truth.column("symbol"), lost_symbol),
                                pc.invert(pc.and_(pc.equal(truth.column("symbol"), broken), pc.equal(truth.column("cum_volume"), late_tick)))))
    hot, lake = load(settings, kept, kept)
    with KisRestStandin(truth, day, KIS_KEY, KIS_SECRET, rate_limit=20) as server:
        s = with_brokers(settings, tmp_path, kis_url=server.url)
        before = recover(s, day, broker="kis", today=day, dry_run=True)
        assert lost_symbol not in {r.symbol for r in before.symbols}  # the archive alone does not know it

        lost_at = datetime(day.year, day.month, day.day, 10, 0, 30, tzinfo=KST)
        gap = Gap("kis", (watched, broken, lost_symbol), lost_at, lost_at + timedelta(minutes=4), "connection closed by the server (1011)")
        rclient.xadd(gaps_stream(settings.stream), gap.to_fields())
        report = recover(s, day, broker="kis", today=day)
        assert report.complete, report.render()
    by_sym = {r.symbol: r for r in report.symbols}
    window = (lost_at.replace(second=0), lost_at.replace(second=0) + timedelta(minutes=5))
    assert by_sym[lost_symbol].collector_gaps == [window] == by_sym[watched].collector_gaps
    assert by_sym[SYMBOLS[2]].collector_gaps == []
    assert any(a <= window[0] and window[1] <= b for a, b in by_sym[broken].windows)  # checked with the gap's windows
    assert by_sym[broken].ticks_recovered == 1
    assert by_sym[lost_symbol].ticks_recovered == truth.filter(pc.equal(truth.column("symbol"), lost_symbol)).num_rows
    assert "recorded collector gap" in " ".join(by_sym[watched].notes)  # proven complete without fetching trades
    as_json = {r["symbol"]: r for r in report.to_dict()["symbols"]}
    assert as_json[watched]["collector_gaps"] == [[window[0].isoformat(), window[1].isoformat()]]
    assert_equal_truth(settings, day, truth, hot, lake)
    hot.close(), lake.close()


def test_kiwoom_repairs_planted_gaps_and_rerun_is_minimal(settings, tmp_path, day, truth, caplog):
    caplog.set_level(logging.DEBUG)
    lake_t, hot_t, planted = plant(truth, day)
    hot, lake = load(settings, lake_t, hot_t)
    with KiwoomRestStandin(truth, day, KW_KEY, KW_SECRET, rate_limit=5, page_rows=KW_PAGE) as server:
        s = with_brokers(settings, tmp_path, kw_url=server.url)
        server.at_call(2, "expire")
        server.at_call(4, "rate")
        report = recover(s, day, broker="kiwoom", today=day)
        assert report.complete, report.render()
        assert server.rejected == 0 and server.injected_rate_errors == 1 and server.token_issues == 2
        assert_equal_truth(settings, day, truth, hot, lake)
        by_sym = {r.symbol: r for r in report.symbols}
        assert by_sym[SYMBOLS[1]].ticks_recovered == planted["single"]
        assert by_sym[SYMBOLS[2]].ticks_recovered == 2
        assert by_sym[SYMBOLS[3]].ticks_recovered == 1
        server.reset_counters()
        again = recover(s, day, broker="kiwoom", today=day)
        assert again.complete
        assert sum(r.ticks_recovered + r.copied_to_hot + r.copied_to_lake for r in again.symbols) == 0
        assert server.calls_by_api == {"ka10080": kiwoom_bar_calls(truth)}
        assert server.rejected == 0
        text = report.render() + report_path(settings.lake_dir, day, "kiwoom").read_text() + caplog.text
    for secret in (KW_KEY, KW_SECRET):
        assert secret not in text
    hot.close(), lake.close()


def test_past_day_is_reported_unrecoverable_without_inventing_ticks(settings, tmp_path, day, truth):
    lake_t, hot_t, _ = plant(truth, day)
    hot, lake = load(settings, lake_t, hot_t)
    start, end = trading_day_bounds(day)
    with KisRestStandin(truth, day, KIS_KEY, KIS_SECRET) as server:
        s = with_brokers(settings, tmp_path, kis_url=server.url)
        report = recover(s, day, broker="kis", today=day + timedelta(days=1))
        assert not report.complete
        assert server.calls_by_api.get("FHPST01060000", 0) == 0 and server.calls_by_api["FHKST03010230"] > 0
        a = {r.symbol: r for r in report.symbols}[SYMBOLS[0]]
        assert a.still_disagreeing and all("only for the current day" in d.reason for d in a.still_disagreeing)
        assert a.ticks_recovered == 0
    # nothing invented; only the store-to-store copies happened
    assert pc.sum(pc.equal(lake.read_ticks(start, end).column("source"), "recovery")).as_py() in (0, None)
    hot.close(), lake.close()


def test_dry_run_writes_nothing(settings, tmp_path, day, truth):
    lake_t, hot_t, _ = plant(truth, day)
    hot, lake = load(settings, lake_t, hot_t)
    start, end = trading_day_bounds(day)
    before = (lake.read_ticks(start, end).num_rows, hot.read_ticks(start, end).num_rows)
    with KisRestStandin(truth, day, KIS_KEY, KIS_SECRET) as server:
        report = recover(with_brokers(settings, tmp_path, kis_url=server.url), day, broker="kis", today=day, dry_run=True)
    assert not report.complete
    assert sum(r.ticks_recovered for r in report.symbols) > 0  # what it would recover
    assert (lake.read_ticks(start, end).num_rows, hot.read_ticks(start, end).num_rows) == before
    assert not report_path(settings.lake_dir, day, "kis").exists()
    hot.close(), lake.close()


def test_cli_recover_exit_codes_json_and_no_secrets(settings, tmp_path, day, truth, monkeypatch):
    from click.testing import CliRunner

    from tickvault.cli import cli

    lake_t, hot_t, _ = plant(truth, day)
    hot, lake = load(settings, lake_t, hot_t)
    with KisRestStandin(truth, day, KIS_KEY, KIS_SECRET) as server:
        env = {
            "TICKVAULT_PG_URL": settings.pg_dsn, "TICKVAULT_PG_SCHEMA": settings.pg_schema, "TICKVAULT_LAKE_DIR": str(settings.lake_dir),
            "TICKVAULT_STREAM": settings.stream, "TICKVAULT_HOT_MODE": "postgres", "TICKVAULT_KIS_APPKEY": KIS_KEY,
            "TICKVAULT_KIS_APPSECRET": KIS_SECRET, "TICKVAULT_KIS_BASE_URL": server.url, "TICKVAULT_BROKER_TOKEN_DIR": str(tmp_path / "tok"),
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        runner = CliRunner()
        dry = runner.invoke(cli, ["--log-level", "DEBUG", "recover", "--date", day.isoformat(), "--broker", "kis", "--dry-run"])
        assert dry.exit_code == 1, dry.output
        assert "dry run" in dry.stdout and "not complete" in dry.stderr and len(dry.stderr.strip().splitlines()) >= 1
        real = runner.invoke(cli, ["--log-level", "DEBUG", "recover", "--date", day.isoformat(), "--broker", "kis", "--venue", "krx", "--json"])
        assert real.exit_code == 0, real.output
        doc = json.loads(real.stdout)
        assert doc["format"] == "tickvault.recovery/1" and doc["complete"] is True and doc["totals"]["ticks_recovered"] > 0
        assert doc["venue"] == "KRX" and {s["venue"] for s in doc["symbols"]} == {"KRX"}
        only = runner.invoke(cli, ["recover", "--date", day.isoformat(), "--symbols", SYMBOLS[0], "--venue", "krx"])
        assert only.exit_code == 0 and SYMBOLS[0] in only.stdout and SYMBOLS[1] not in only.stdout
        both = runner.invoke(cli, ["recover", "--date", day.isoformat(), "--json"])  # --venue all: one run per venue trading that day
        assert both.exit_code == 0, both.output
        venues = json.loads(both.stdout)
        if venues.get("format") == "tickvault.recovery-venues/1":  # the day NXT trades (no NXT ticks archived here)
            assert [v["venue"] for v in venues["venues"]] == ["KRX", "NXT"] and venues["complete"] is True
            assert venues["venues"][1]["symbols"] == []
        bad = runner.invoke(cli, ["recover", "--date", "2026-13-01"])
        assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
        assert server.rejected == 0
    monkeypatch.delenv("TICKVAULT_KIS_APPSECRET")
    missing = CliRunner().invoke(cli, ["recover", "--date", day.isoformat(), "--broker", "kis"])
    assert missing.exit_code == 1 and "TICKVAULT_KIS_APPSECRET" in missing.stderr
    everything = dry.output + real.output + only.output + missing.output + report_path(settings.lake_dir, day, "kis").read_text()
    for secret in (KIS_KEY, KIS_SECRET):
        assert secret not in everything
    hot.close(), lake.close()


def test_scheduled_job_without_credentials_skips_with_a_reason(settings, caplog):
    from tickvault.services.recovery import recover_day

    assert recover_day(settings.model_copy(update={"recovery_broker": "kiwoom"}), date(2026, 11, 20)) is None
    assert "TICKVAULT_KIWOOM_APPKEY" in caplog.text


def test_cli_hot_store_down_is_one_clear_line(settings, tmp_path, day, truth, monkeypatch):
    from click.testing import CliRunner

    from tickvault.cli import cli

    lake = Lake(settings)
    lake.init()
    lake.upsert(truth)
    with KisRestStandin(truth, day, KIS_KEY, KIS_SECRET) as server:
        for k, v in {"TICKVAULT_PG_URL": "postgresql://postgres@127.0.0.1:1/none", "TICKVAULT_LAKE_DIR": str(settings.lake_dir),
                     "TICKVAULT_KIS_APPKEY": KIS_KEY, "TICKVAULT_KIS_APPSECRET": KIS_SECRET, "TICKVAULT_KIS_BASE_URL": server.url,
                     "TICKVAULT_BROKER_TOKEN_DIR": str(tmp_path / "tok"), "TICKVAULT_PG_SCHEMA": settings.pg_schema}.items():
            monkeypatch.setenv(k, v)
        result = CliRunner().invoke(cli, ["recover", "--date", day.isoformat()])
    assert result.exit_code == 1
    assert "hot store unreachable" in result.stderr and "TICKVAULT_PG_URL" in result.stderr
    assert KIS_SECRET not in result.output
    lake.close()
