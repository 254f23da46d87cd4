"""Adjusted prices (수정주가) across a planted 50:1 split: factors from the KIS stand-in's daily chart,
adjusted 1d and 15m bars equal to bars computed independently from adjusted ticks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from click.testing import CliRunner

from factories import session_ticks
from helpers import settings_env
from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.errors import QueryError
from tickvault.core.wire import KST, ticks_to_table
from tickvault.services.adjustments import refresh
from tickvault.services.api import Vault
from tickvault.stores.lake import Lake
from truth import as_rows, truth_bars

SYMBOL = "005930"
DAYS = (date(2025, 12, 30), date(2026, 1, 2), date(2026, 1, 5))
SPLIT = date(2026, 1, 5)  # 50:1, effective from this date
RATIO = 50
KIS_KEY, KIS_SECRET = "PSadjustKisKey0123456789ab", "adjustKisSecret/+=ZYXWVU98765"
KW_KEY, KW_SECRET = "adjustKiwoomKey0123456789", "adjustKiwoomSecret9876543210"


def _split(ticks):
    """The trades as they happened: before the split every price is 50x (and every volume 1/50) of today's terms."""
    out = []
    for t in ticks:
        if t.ts.astimezone(KST).date() < SPLIT:
            t = replace(t, price=t.price * RATIO, volume=t.volume, cum_volume=t.cum_volume)
        out.append(t)
    return out


def _adjusted_independently(ticks):
    """Back-adjusted by hand: prices / 50 and volumes x 50 before the split date."""
    out = []
    for t in ticks:
        if t.ts.astimezone(KST).date() < SPLIT:
            t = replace(t, price=t.price / RATIO, volume=t.volume * RATIO, cum_volume=t.cum_volume * RATIO)
        out.append(t)
    return out


@pytest.fixture
def split_archive(settings, tmp_path):
    from standins.kis_rest import KisRestStandin

    traded = _split(session_ticks(seed=9, days=DAYS, symbols=(SYMBOL,)))
    with Lake(settings) as lake:
        lake.init()
        lake.upsert(ticks_to_table(traded))
    chart = {}
    for day in DAYS:
        close = [t for t in traded if t.ts.astimezone(KST).date() == day][-1].price
        chart[day] = (close, close / RATIO if day < SPLIT else close)
    with KisRestStandin(ticks_to_table(traded), DAYS[-1], KIS_KEY, KIS_SECRET, daily_chart={SYMBOL: chart}) as server:
        broker = Settings.model_validate({**settings.model_dump(), "kis_appkey": KIS_KEY, "kis_appsecret": KIS_SECRET,
                                          "kis_base_url": server.url, "broker_token_dir": tmp_path / "tokens"})
        factors = refresh(broker, [SYMBOL], DAYS[0], DAYS[-1], broker="kis")
    return settings, traded, factors


def test_kiwoom_gives_the_same_factors(split_archive, tmp_path) -> None:
    from standins.kiwoom_rest import KiwoomRestStandin

    settings, traded, factors = split_archive
    chart = {day: (close, adjusted) for day, close, adjusted in
             zip(factors.column("day").to_pylist(), factors.column("close").to_pylist(), factors.column("adjusted_close").to_pylist())}
    with KiwoomRestStandin(ticks_to_table(traded), DAYS[-1], KW_KEY, KW_SECRET, page_rows=2, daily_chart={SYMBOL: chart}) as server:
        broker = Settings.model_validate({**settings.model_dump(), "kiwoom_appkey": KW_KEY, "kiwoom_secretkey": KW_SECRET,
                                          "kiwoom_base_url": server.url, "broker_token_dir": tmp_path / "kw-tokens"})
        again = refresh(broker, [SYMBOL], DAYS[0], DAYS[-1], broker="kiwoom")
    assert again.column("factor").to_pylist() == factors.column("factor").to_pylist()
    assert again.column("source").to_pylist() == ["kiwoom"] * 3


def test_the_scheduled_job_refreshes_the_days_symbols(split_archive, tmp_path) -> None:
    from standins.kis_rest import KisRestStandin
    from tickvault.ops.run import daily_adjustments

    settings, traded, factors = split_archive
    assert daily_adjustments(settings)(DAYS[-1]) == {"skipped": 1.0}  # no broker credentials
    chart = {day: (close, adjusted) for day, close, adjusted in
             zip(factors.column("day").to_pylist(), factors.column("close").to_pylist(), factors.column("adjusted_close").to_pylist())}
    with KisRestStandin(ticks_to_table(traded), DAYS[-1], KIS_KEY, KIS_SECRET, daily_chart={SYMBOL: chart}) as server:
        broker = Settings.model_validate({**settings.model_dump(), "kis_appkey": KIS_KEY, "kis_appsecret": KIS_SECRET,
                                          "kis_base_url": server.url, "broker_token_dir": tmp_path / "job-tokens"})
        assert daily_adjustments(broker)(DAYS[-1]) == {"factors": 3.0}


def test_factors_come_from_the_daily_chart(split_archive) -> None:
    settings, _, factors = split_archive
    assert [(r["day"], r["factor"]) for r in factors.to_pylist()] == [(DAYS[0], Decimal("0.02")), (DAYS[1], Decimal("0.02")), (DAYS[2], 1)]
    with Vault(settings) as vault:
        stored = vault.adjustments(SYMBOL)
    assert stored.column("factor").to_pylist() == factors.column("factor").to_pylist()


@pytest.mark.parametrize("tf", ["1d", "15m"])
def test_adjusted_bars_equal_an_independent_computation(split_archive, tf: str) -> None:
    settings, traded, _ = split_archive
    with Vault(settings) as vault:
        raw = vault.candles(SYMBOL, tf, DAYS[0], DAYS[-1], source="cold")
        adjusted = vault.candles(SYMBOL, tf, DAYS[0], DAYS[-1], source="cold", adjusted=True)
    expected = truth_bars(_adjusted_independently(traded), tf, "regular")
    without_vwap = [row[:-1] for row in as_rows(adjusted)]
    assert without_vwap == [row[:-1] for row in expected]
    assert as_rows(raw) == truth_bars(traded, tf, "regular")  # raw prices stay as traded
    first_close, last_close = adjusted.column("close")[0].as_py(), adjusted.column("close")[-1].as_py()
    assert abs(first_close / last_close - 1) < Decimal("0.5")  # no 50x jump at the split any more


def test_adjusted_ticks_and_the_cli(split_archive, monkeypatch) -> None:
    settings, traded, _ = split_archive
    with Vault(settings) as vault:
        ticks = vault.ticks(SYMBOL, DAYS[0], source="cold", adjusted=True)
        with pytest.raises(QueryError, match="intraday and 1d"):
            vault.candles(SYMBOL, "1w", DAYS[0], DAYS[-1], adjusted=True)
    first = next(t for t in traded if t.ts.astimezone(KST).date() == DAYS[0])
    assert ticks.column("price")[0].as_py() == first.price / RATIO and ticks.column("volume")[0].as_py() == first.volume * RATIO
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    shown = CliRunner().invoke(cli, ["adjustments", "show", "--symbols", SYMBOL, "--format", "csv"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[1].startswith(f"{SYMBOL},2025-12-30,0.02")
    bars = CliRunner().invoke(cli, ["candles", SYMBOL, "--tf", "1d", "--start", "20251230", "--end", "20260105", "--source", "cold",
                                    "--adjusted", "--format", "csv"])
    assert bars.exit_code == 0, bars.output
    assert len(bars.stdout.splitlines()) == 4
