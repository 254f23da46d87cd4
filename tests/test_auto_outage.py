"""source=auto while PostgreSQL is down: the lake answers what it holds, the rest is named (PartialAnswer, exit 3)."""

from __future__ import annotations

import warnings
from datetime import datetime

import pytest
from click.testing import CliRunner

from helpers import settings_env
from tickvault.cli import cli
from tickvault.core import calendar as krx
from tickvault.core.errors import PartialAnswer
from tickvault.core.wire import KST
from tickvault.dev.simulate import generate_day
from tickvault.services.api import Vault
from tickvault.stores.lake import Lake

DOWN = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1


@pytest.fixture
def lake_only(settings):
    """A lake holding one trading day (the hot store's dates, as far as the clock goes) and a hot store that is down."""
    today = datetime.now(KST).date()
    held = krx.previous_trading_day(today)
    lake = Lake(settings)
    lake.init()
    table = generate_day(held, symbols=2, ticks=400, seed=3)
    lake.upsert(table)
    lake.close()
    return settings.model_copy(update={"pg_url": DOWN}), held, table


def test_the_lake_answers_the_dates_it_holds(lake_only) -> None:
    down, held, table = lake_only
    with Vault(down) as vault, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ticks = vault.ticks(None, held)
    assert ticks.num_rows == table.num_rows
    assert [w for w in caught if "answered from the lake, which holds every date asked" in str(w.message)]
    assert not [w for w in caught if issubclass(w.category, PartialAnswer)]


def test_a_date_the_lake_lacks_is_a_partial_answer(lake_only) -> None:
    down, held, table = lake_only
    earlier = krx.previous_trading_day(held)
    with Vault(down) as vault, pytest.warns(PartialAnswer, match=f"lacks {earlier}"):
        ticks = vault.ticks(None, earlier, held)
    assert ticks.num_rows == table.num_rows


def test_cli_exits_non_zero_only_when_incomplete(lake_only, monkeypatch) -> None:
    down, held, table = lake_only
    for name, value in settings_env(down).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    whole = CliRunner().invoke(cli, ["ticks", "all", "--start", held.isoformat(), "--format", "csv"])
    assert whole.exit_code == 0, whole.output
    assert len(whole.stdout.splitlines()) == table.num_rows + 1
    assert "answered from the lake" in whole.stderr and len(whole.stderr.strip().splitlines()) == 1
    earlier = krx.previous_trading_day(held)
    partial = CliRunner().invoke(cli, ["ticks", "all", "--start", earlier.isoformat(), "--end", held.isoformat(), "--format", "csv"])
    assert partial.exit_code == 3
    assert len(partial.stdout.splitlines()) == table.num_rows + 1
    assert f"lacks {earlier}" in partial.stderr and "TICKVAULT_PG_URL" in partial.stderr


def test_hot_source_still_fails_in_one_line(lake_only) -> None:
    down, held, _ = lake_only
    from tickvault.core.errors import StoreUnavailable

    with Vault(down) as vault, pytest.raises(StoreUnavailable, match="TICKVAULT_PG_URL"):
        vault.ticks(None, held, source="hot")
