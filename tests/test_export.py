"""`tickvault export`, and the operator's path end to end: `simulate` -> archivers -> `export`.

(The 500k-tick acceptance run lives in test_ingest_e2e.py; here the same path runs through
the CLI commands at a size that keeps the suite fast.)"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from helpers import settings_env
from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.stream import connect
from tickvault.core.wire import NATURAL_KEY, TICK_SCHEMA
from tickvault.dev.simulate import generate_day
from tickvault.services.archiver import build_archiver
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

DAY = date(2026, 11, 20)
BY_KEY = [(k, "ascending") for k in NATURAL_KEY]


def _export(settings: Settings, source: str, out: Path, *extra: str) -> pa.Table:
    result = CliRunner().invoke(cli, ["export", "--source", source, "--date", DAY.isoformat(), "--out", str(out), *extra], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    return pq.read_table(out)


def test_export_both_stores_sorted_and_filtered(settings: Settings, tmp_path: Path) -> None:
    truth = generate_day(DAY, symbols=4, ticks=3_000, seed=2)
    other_day = generate_day(date(2026, 11, 19), symbols=4, ticks=500, seed=2)
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    for table in (truth, other_day):
        assert hot.upsert(table) == table.num_rows
        assert lake.upsert(table) == table.num_rows
    lake.close()
    want = truth.sort_by(BY_KEY)
    for source in ("hot", "cold"):
        got = _export(settings, source, tmp_path / f"{source}.parquet")
        assert got.schema.names == TICK_SCHEMA.names
        assert got.cast(TICK_SCHEMA).equals(want), source
    picked = sorted(set(truth.column("symbol").to_pylist()))[:2]
    for source in ("hot", "cold"):
        got = _export(settings, source, tmp_path / f"{source}-2.parquet", "--symbols", ",".join(picked))
        assert got.cast(TICK_SCHEMA).equals(want.filter(pc.is_in(want.column("symbol"), pa.array(picked))))


def test_export_refuses_a_missing_lake_and_a_bad_date(settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "x.parquet"
    missing = runner.invoke(cli, ["export", "--source", "cold", "--date", "2026-11-20", "--out", str(out)], env=settings_env(settings))
    assert missing.exit_code == 1 and "no lake at" in missing.output and not out.exists()
    assert not Path(settings.lake_dir).exists()  # export never creates a lake
    bad = runner.invoke(cli, ["export", "--source", "hot", "--date", "11/20", "--out", str(out)], env=settings_env(settings))
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


def test_export_reports_a_down_hot_store(settings: Settings, tmp_path: Path) -> None:
    env = settings_env(settings) | {"TICKVAULT_PG_URL": "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"}
    result = CliRunner().invoke(cli, ["export", "--source", "hot", "--date", "2026-11-20", "--out", str(tmp_path / "x.parquet")], env=env)
    assert result.exit_code == 1 and "cannot read the hot store" in result.output


def test_simulated_day_with_duplicates_and_shuffle_lands_exactly_once(settings: Settings, tmp_path: Path) -> None:
    """1 % re-sent, shuffled in windows of 50 -> both exports equal the truth file, every value."""
    truth_path = tmp_path / "truth.parquet"
    env = settings_env(settings)
    sim = CliRunner().invoke(
        cli,
        ["simulate", "--date", DAY.isoformat(), "--symbols", "20", "--ticks", "60000", "--seed", "11",
         "--dup-rate", "0.01", "--shuffle-window", "50", "--truth", str(truth_path)],
        env=env,
    )
    assert sim.exit_code == 0, sim.output
    assert "published 60600 ticks (60000 distinct" in sim.output

    archivers = [build_archiver(settings, group, consumer=f"test-{group}") for group in ("hot", "cold")]
    threads = [threading.Thread(target=a.run_until_idle, kwargs={"idle_reads": 2}) for a in archivers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    for a in archivers:
        a.store.close()
    assert not any(t.is_alive() for t in threads)

    truth = pq.read_table(truth_path)
    assert truth.num_rows == 60_000
    for source in ("hot", "cold"):
        got = _export(settings, source, tmp_path / f"{source}.parquet")
        assert got.num_rows == truth.num_rows, source
        assert got.cast(TICK_SCHEMA).equals(truth.cast(TICK_SCHEMA)), f"{source} differs from the truth file"
    client = connect(settings.redis_dsn)
    info = {g["name"]: g for g in client.xinfo_groups(settings.stream)}
    assert info["hot"]["pending"] == 0 and info["cold"]["pending"] == 0
    assert client.xlen(settings.dlq_stream) == 0
    client.close()


@pytest.mark.parametrize("source", ["hot", "cold"])
def test_export_of_an_empty_day_is_an_empty_file(settings: Settings, tmp_path: Path, source: str) -> None:
    HotStore(settings).init()
    lake = Lake(settings)
    lake.init()
    lake.close()
    got = _export(settings, source, tmp_path / "empty.parquet")
    assert got.num_rows == 0 and got.schema.names == TICK_SCHEMA.names
