"""`tickvault compact` end to end (real lake in a temp dir), including while a writer ingests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from factories import DAY, interleaved_ticks
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.stores.contract import StreamPosition
from tickvault.stores.lake import Lake


def env_for(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env["TICKVAULT_LAKE_DIR"] = str(settings.lake_dir)
    return env


def test_compact_cli_merges_the_day(settings):
    with Lake(settings.model_copy(update={"cold_inline_row_limit": 0})) as lake:  # a file per commit
        for i in range(6):
            lake.upsert(interleaved_ticks(40, start_cum=i * 100))
        before = lake.read_ticks(*trading_day_bounds(DAY))
        assert lake.file_count(DAY) == 6
    result = CliRunner().invoke(cli, ["compact", "--date", DAY.isoformat(), "--json"], env=env_for(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["date"] == DAY.isoformat() and report["files_before"] == 6 and report["files_after"] == 1
    assert report["rows"] == before.num_rows
    with Lake(settings) as lake:
        assert lake.read_ticks(*trading_day_bounds(DAY)).equals(before)


def test_compact_cli_refuses_a_missing_lake_and_a_bad_date(settings):
    runner = CliRunner()
    missing = runner.invoke(cli, ["compact", "--date", DAY.isoformat()], env=env_for(settings))
    assert missing.exit_code != 0
    assert "no lake at" in missing.stderr and "TICKVAULT_LAKE_DIR" in missing.stderr
    bad = runner.invoke(cli, ["compact", "--date", "20-11-2026"], env=env_for(settings))
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert not (settings.lake_dir / "catalog.sqlite").exists()  # nothing created by mistake


@pytest.mark.parametrize("inline_rows", [0, 100], ids=["files", "inlined"])
def test_compact_while_ingesting_loses_and_duplicates_nothing(settings, inline_rows):
    """With inlining on, the compaction's flush of inlined rows races the writer's commits."""
    lake = Lake(settings.model_copy(update={"cold_inline_row_limit": inline_rows}))
    for i in range(8):
        lake.upsert(interleaved_ticks(50, start_cum=i * 100))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tickvault.cli import main; main()", "compact", "--date", DAY.isoformat(), "--json"],
        env=env_for(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    written = 8
    during = 0
    while proc.poll() is None or written < 12:  # keep ingesting for as long as the compaction runs
        lake.write(interleaved_ticks(50, start_cum=written * 100), StreamPosition(settings.stream, "cold", f"{written}-0"))
        during += proc.poll() is None
        written += 1
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert during >= 1, "no batch was committed while the compaction ran"
    report = json.loads(out.strip().splitlines()[-1])
    assert report["files_before"] >= 8 if inline_rows == 0 else report["files_after"] >= 1
    expected = set()
    for i in range(written):
        batch = interleaved_ticks(50, start_cum=i * 100)
        expected |= set(zip(*(batch.column(c).to_pylist() for c in ("symbol", "ts", "cum_volume"))))
    stored = lake.read_ticks(*trading_day_bounds(DAY))
    keys = list(zip(*(stored.column(c).to_pylist() for c in ("symbol", "ts", "cum_volume"))))
    assert len(keys) == len(set(keys)), "a tick was duplicated"
    assert set(keys) == expected, "a tick was lost"
    assert lake.checkpoint(settings.stream, "cold") == f"{written - 1}-0"
    lake.close()
