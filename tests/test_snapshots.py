"""Snapshots as a first-class idea: listed with what changed, usable as --as-of by id or time, unknown ids refused in one line."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from helpers import settings_env
from tickvault.cli import cli
from tickvault.dev.simulate import generate_day
from tickvault.services.api import Vault
from tickvault.stores.contract import StreamPosition
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 27)


@pytest.fixture
def lake_history(settings, monkeypatch):
    """An archiver batch, a recovery upsert, then a compaction."""
    table = generate_day(DAY, symbols=2, ticks=300, seed=4)
    with Lake(settings) as lake:
        lake.init()
        lake.write(table.slice(0, 200), StreamPosition(settings.stream, "cold", "17-0"))
        after_batch = lake.snapshot_id()
        lake.upsert(table.slice(200), why="recovery")
        lake.compact(DAY)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    return settings, table, after_batch


def test_snapshots_say_what_changed(lake_history) -> None:
    settings, _, after_batch = lake_history
    with Vault(settings) as vault:
        listed = vault.snapshots(limit=10).to_pylist()
    kinds = [row["kind"] for row in listed]
    assert "compaction" in kinds and kinds.index("compaction") < kinds.index("recovery")
    recovery = next(row for row in listed if row["kind"] == "recovery")
    batch = next(row for row in listed if row["kind"] == "archiver batch")
    assert batch["id"] == after_batch and "17-0" in batch["detail"]
    assert recovery["id"] > batch["id"] and "100 ticks" in recovery["detail"]
    assert [row["id"] for row in listed] == sorted((row["id"] for row in listed), reverse=True)


def test_as_of_an_id_or_a_time_from_the_list(lake_history) -> None:
    settings, table, _ = lake_history
    with Vault(settings) as vault:
        batch = next(row for row in vault.snapshots().to_pylist() if row["kind"] == "archiver batch")
        by_id = vault.ticks(None, DAY, as_of=batch["id"])
        by_time = vault.ticks(None, DAY, as_of=batch["time"])
        now = vault.ticks(None, DAY)
    assert by_id.num_rows == by_time.num_rows == 200 and now.num_rows == table.num_rows


def test_cli_lists_and_refuses_an_unknown_id_in_one_line(lake_history) -> None:
    listed = CliRunner().invoke(cli, ["snapshots", "--json", "--limit", "3"])
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == 3
    unknown = CliRunner().invoke(cli, ["ticks", "all", "--start", DAY.isoformat(), "--as-of", "999999"])
    assert unknown.exit_code == 2
    assert len(unknown.stderr.strip().splitlines()) == 1 and "tickvault snapshots" in unknown.stderr
    assert "hot store" not in unknown.stderr
