"""A mistyped TICKVAULT_LAKE_DIR: only `init` and the archivers create a lake; every other
command and the Python `Lake` / `Vault` refuse a missing lake with one line naming the
variable, and leave nothing behind at the mistyped path (issue 13.12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from factories import DAY
from helpers import settings_env
from tickvault import Vault
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.errors import StoreNotInitialized
from tickvault.services.sync.rebuild import rebuild
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

D = DAY.isoformat()
COMMANDS = {
    "verify": ["verify", "--date", D],
    "verify-cold": ["verify", "--date", D, "--source", "cold"],
    "reconcile": ["reconcile", "--date", D, "--repair"],
    "lake-sql": ["lake-sql"],
    "status": ["status", "--date", D],
    "export": ["export", "--source", "cold", "--date", D, "--out", "{tmp}/day.parquet"],
    "compact": ["compact", "--date", D],
    "ticks": ["ticks", "005930", "--start", D, "--end", D, "--source", "cold"],
    "candles": ["candles", "005930", "--tf", "1m", "--start", D, "--end", D, "--source", "cold"],
    "rebuild-cold": ["rebuild", "cold", "--from", D, "--wait", "1"],
    "rebuild-hot": ["rebuild", "hot", "--from", D, "--wait", "1"],
    "replay": ["collect", "replay", "--date", D, "--speed", "max"],
}


@pytest.fixture
def hot_only(settings: Settings) -> Settings:
    """A ready hot store and a lake directory that does not exist (the operator's typo)."""
    with HotStore(settings) as hot:
        hot.init()
    assert not Path(settings.lake_dir).exists()
    return settings


def assert_nothing_created(settings: Settings) -> None:
    lake_dir = Path(settings.lake_dir)
    assert not (lake_dir / "catalog.sqlite").exists(), "a command created a lake at the mistyped path"
    assert not (lake_dir / "data").exists()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_refuses_a_missing_lake(hot_only: Settings, rclient, tmp_path: Path, name: str) -> None:
    if name.startswith("rebuild"):  # rebuild waits for the other group: let it be there and current
        rclient.xadd(hot_only.stream, {"probe": "1"})
        for group in ("hot", "cold"):
            rclient.xgroup_create(hot_only.stream, group, id="$")
    args = [a.replace("{tmp}", str(tmp_path)) for a in COMMANDS[name]]
    out = CliRunner().invoke(cli, args, env=settings_env(hot_only))
    assert out.exit_code != 0, out.output
    assert "TICKVAULT_LAKE_DIR" in out.output, out.output  # status names it in its report, the rest on stderr
    assert "Traceback" not in out.output
    assert_nothing_created(hot_only)


def test_init_and_the_archivers_do_create_it(hot_only: Settings) -> None:
    out = CliRunner().invoke(cli, ["init", "--no-hot"], env=settings_env(hot_only))
    assert out.exit_code == 0, out.output
    assert (Path(hot_only.lake_dir) / "catalog.sqlite").exists()


def test_the_python_lake_and_vault_refuse_a_missing_lake(hot_only: Settings) -> None:
    start, end = trading_day_bounds(DAY)
    lake = Lake(hot_only)
    for read in (lambda: lake.read_ticks(start, end), lambda: lake.count_ticks(DAY), lambda: lake.connect(),
                 lambda: lake.checkpoint(hot_only.stream, "cold"), lambda: lake.minute_fingerprints(start, end),
                 lambda: lake.snapshot_id(), lambda: lake.compact(DAY)):
        with pytest.raises(StoreNotInitialized, match="TICKVAULT_LAKE_DIR"):
            read()
    lake.close()
    with Vault(hot_only) as vault, pytest.raises(StoreNotInitialized, match="TICKVAULT_LAKE_DIR"):
        vault.ticks("005930", DAY, source="cold")
    assert_nothing_created(hot_only)


def test_rebuild_cold_refuses_before_it_moves_a_group(hot_only: Settings, rclient) -> None:
    rclient.xadd(hot_only.stream, {"probe": "1"})
    for group in ("hot", "cold"):
        rclient.xgroup_create(hot_only.stream, group, id="0")
    rclient.xreadgroup("hot", "h", {hot_only.stream: ">"})
    rclient.xack(hot_only.stream, "hot", *[e[0] for e in rclient.xrange(hot_only.stream)])
    with pytest.raises(StoreNotInitialized, match="TICKVAULT_LAKE_DIR"):
        rebuild(hot_only, "cold", trading_day_bounds(DAY)[0], wait_s=1)
    assert rclient.xinfo_groups(hot_only.stream)[0]["last-delivered-id"] == "0-0"  # the cold group did not move
    assert_nothing_created(hot_only)
