"""Progress of long work: (done, total) callbacks from the services, a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from factories import session_ticks
from tickvault.cli import progress as progress_module
from tickvault.cli.progress import describe, progress
from tickvault.core.wire import ticks_to_table
from tickvault.services.sync.reconcile import reconcile
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


def test_describe_has_rate_and_eta() -> None:
    assert describe("rebuild hot", "minutes", 120, 400, 10.0) == "rebuild hot: 120/400 minutes (30%), 12.0 minutes/s, ETA 23s"
    assert describe("x", "u", 0, 0, 0.0) == "x: 0/0 u, 0.0 u/s"


def test_plain_log_lines_off_a_terminal(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "LOG_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="tickvault.progress"), progress("recover 2026-11-27", "symbols", terminal=False) as step:
        for done in range(5):
            step(done, 4)
    lines = [r.getMessage() for r in caplog.records if r.name == "tickvault.progress"]
    assert lines[-1].startswith("recover 2026-11-27: 4/4 symbols (100%)") and len(lines) >= 5
    assert "\r" not in "".join(lines)


def test_a_bar_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("rebuild cold", "minutes", terminal=True) as step:
        for done in range(11):
            step(done, 10)
    err = capsys.readouterr().err
    assert "rebuild cold" in err and "10/10" in err and "ETA" in err and "minutes/s" in err


def test_reconcile_reports_its_steps(settings) -> None:
    day = date(2026, 1, 2)
    table = ticks_to_table(session_ticks(seed=4, days=(day,), symbols=("005930",)))
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    hot.upsert(table)
    lake.upsert(table.slice(0, table.num_rows - 5))
    hot.close()
    lake.close()
    seen: list[tuple[int, int]] = []
    report = reconcile(settings.model_copy(update={"tick_retention_days": 3650}), day, repair=True,
                       on_progress=lambda done, total: seen.append((done, total)))
    assert report.added_to_cold == 5
    assert seen[0] == (0, 4) and seen[-1] == (4, 4) and [d for d, _ in seen] == sorted(d for d, _ in seen)
