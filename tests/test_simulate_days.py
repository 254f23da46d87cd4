"""The simulator across days: each day opens from the previous close, activity varies by date and symbol."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from tickvault.cli import cli
from tickvault.core import calendar as krx
from tickvault.dev.demo import cum_volume_breaks
from tickvault.dev.simulate import generate_day, generate_days

LAST = date(2026, 11, 27)


@pytest.fixture(scope="module")
def week() -> list[tuple[date, pa.Table]]:
    return generate_days(LAST, 5, symbols=6, ticks=6_000, seed=2)


def _open_close(table: pa.Table) -> dict[str, tuple[float, float]]:
    """Each symbol's first and last trade price by time (on whichever venue)."""
    ordered = table.sort_by([("symbol", "ascending"), ("ts", "ascending")])
    out = {}
    for symbol in sorted(set(ordered.column("symbol").to_pylist())):
        prices = ordered.filter(pc.equal(ordered.column("symbol"), symbol)).column("price").cast(pa.float64()).to_pylist()
        out[symbol] = (prices[0], prices[-1])
    return out


def test_consecutive_trading_days_ending_at_the_last(week) -> None:
    days = [day for day, _ in week]
    assert days[-1] == LAST and len(days) == 5
    assert all(krx.next_trading_day(a) == b for a, b in itertools.pairwise(days))


def test_each_day_opens_near_the_previous_close(week) -> None:
    gaps = []
    for (_, before), (_, after) in itertools.pairwise(week):
        closes, opens = _open_close(before), _open_close(after)
        assert closes.keys() == opens.keys()
        gaps += [abs(np.log(opens[s][0] / closes[s][1])) for s in closes]
    assert max(gaps) < 0.04  # the opening auction's gap (1 % sigma, on the tick grid), not a restart from a fixed level


def test_trade_counts_vary_by_date_and_symbol(week) -> None:
    totals = [table.num_rows for _, table in week]
    assert len(set(totals)) == len(totals) and min(totals) / 6_000 > 0.4 and max(totals) / 6_000 < 2.5
    per_symbol = [dict(zip(*np.unique(table.column("symbol").to_numpy(zero_copy_only=False), return_counts=True))) for _, table in week]
    ranks = [tuple(sorted(counts, key=counts.get)) for counts in per_symbol]
    assert len(set(ranks)) > 1  # the busiest symbol is not the same every day


def test_every_day_restarts_cum_volume(week) -> None:
    assert cum_volume_breaks(pa.concat_tables([table for _, table in week])) == {}


def test_simulate_prints_its_codes() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--date", "2026-11-20", "--symbols", "3", "--ticks", "300", "--seed", "4", "--no-publish"])
    assert result.exit_code == 0, result.output
    codes = sorted(set(generate_day(date(2026, 11, 20), symbols=3, ticks=300, seed=4).column("symbol").to_pylist()))
    assert f"symbols: {' '.join(codes)}" in result.output
