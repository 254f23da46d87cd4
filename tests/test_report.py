"""`tickvault report`: the day's page shows gaps, recovered minutes and disagreement, and renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from helpers import settings_env
from tickvault.cli import cli
from tickvault.dev.simulate import generate_day
from tickvault.ops.report import GAP, RECOVERED, SECTIONS, UNPROVEN, gather, heat_map, render
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 27)


@pytest.fixture
def day_with_a_gap(settings):
    """Three symbols; the lake lacks 40 trades of the busiest one (a gap), and 30 of another's came from recovery."""
    truth = generate_day(DAY, symbols=3, ticks=3_000, seed=8).sort_by([("symbol", "ascending"), ("cum_volume", "ascending")])
    symbols = sorted(set(truth.column("symbol").to_pylist()))
    gap_symbol, recovered_symbol = symbols[0], symbols[1]
    on_krx = pc.and_(pc.equal(truth.column("symbol"), gap_symbol), pc.equal(truth.column("venue"), "KRX"))
    gap_rows = pc.indices_nonzero(on_krx).to_pylist()[400:440]  # one gap, on one venue
    keep = pa.array([i not in set(gap_rows) for i in range(truth.num_rows)])
    recovered_rows = set(pc.indices_nonzero(pc.equal(truth.column("symbol"), recovered_symbol)).to_pylist()[100:130])
    sources = pa.array(["recovery" if i in recovered_rows else s for i, s in enumerate(truth.column("source").to_pylist())])
    lake_table = truth.set_column(truth.schema.get_field_index("source"), "source", sources).filter(keep)
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    hot.upsert(truth)
    lake.upsert(lake_table)
    hot.close()
    lake.close()
    return settings, gap_symbol, recovered_symbol


def test_the_page_marks_gaps_recovery_and_disagreement(day_with_a_gap) -> None:
    settings, gap_symbol, recovered_symbol = day_with_a_gap
    facts = gather(settings, DAY)
    symbols, minutes, grid = heat_map(facts, "KRX")
    assert len(symbols) == 3 and len(minutes) > 300
    assert GAP in grid[symbols.index(gap_symbol)] and GAP not in grid[symbols.index(recovered_symbol)]
    assert RECOVERED in grid[symbols.index(recovered_symbol)] and UNPROVEN in grid[symbols.index(gap_symbol)]
    assert [g["symbol"] for g in facts.gaps] == [gap_symbol]
    by_symbol = {r["symbol"]: r for r in facts.agreement or [] if r.get("venue", "KRX") == "KRX"}  # the gap is on KRX
    assert by_symbol[gap_symbol]["differ"] > 0 and by_symbol[gap_symbol]["hot_ticks"] - by_symbol[gap_symbol]["cold_ticks"] == 40
    assert by_symbol[symbols[2]]["differ"] == 0
    page = render(facts)
    assert all(f'<section id="{s}' in page for s in SECTIONS) and page.count("<script") >= len(SECTIONS)
    assert "cdn.plot.ly" not in page.split("<body>")[0]  # the bundle is embedded, not fetched


def test_cli_writes_the_page_and_chromium_renders_it(day_with_a_gap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, gap_symbol, _ = day_with_a_gap
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--date", "20261127", "--out", str(out), "--symbol", gap_symbol])
    assert result.exit_code == 0, result.output
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no headless Chromium on this machine (Debian: apt-get install -y chromium)")
    shown = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr",
                            "--v=0", "--virtual-time-budget=15000", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", out.as_uri()],
                           capture_output=True, text=True, timeout=180)
    assert shown.returncode == 0, shown.stderr[-2000:]
    console_errors = [line for line in shown.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)]
    assert console_errors == []
    dom = shown.stdout
    for section in SECTIONS:
        block = dom.split(f'id="{section}', 1)[1].split("</section>", 1)[0]
        assert "main-svg" in block, f"section {section}: plotly drew nothing"
    assert re.search(r"1 open gap\(s\)", dom) and f"Candles — {gap_symbol}" in dom
