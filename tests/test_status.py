"""`tickvault status`: real numbers from real servers, and honest output when a part is down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from factories import DAY, simulated_day
from helpers import settings_env
from tickvault.cli import cli
from tickvault.core.config import Settings
from tickvault.core.stream import GroupConsumer, Publisher, connect, connect_raw
from tickvault.dev.simulate import generate_day, publish
from tickvault.services.archiver import build_archiver
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake


def _status(env: dict[str, str], *extra: str):
    return CliRunner().invoke(cli, ["status", "--date", DAY.isoformat(), *extra], env=env)


def test_status_reports_stream_groups_dlq_and_counts(settings: Settings) -> None:
    client = connect(settings.redis_dsn)
    table = generate_day(DAY, symbols=3, ticks=1_500, seed=3)
    publish(Publisher(client, settings.stream), table, dup_rate=0.02, seed=3)
    client.xadd(settings.stream, {"v": "1", "symbol": "BAD", "ts": "x"})  # one dead letter
    GroupConsumer(connect_raw(settings.redis_dsn), settings.stream, "cold", "c").ensure_group()  # cold group exists but has read nothing
    hot = build_archiver(settings, "hot", consumer="h")
    hot.run_until_idle()
    hot.store.write_universe(DAY, [("KRX", s) for s in sorted(set(table.column("symbol").to_pylist()))] + [("NXT", "000010")], "test")
    hot.store.close()
    lake = Lake(settings)
    lake.init()
    lake.close()

    result = _status(settings_env(settings), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["date"] == "2026-11-20"
    assert report["redis"]["length"] == 1_531 and report["redis"]["dlq_length"] == 1
    assert report["redis"]["groups"]["hot"]["lag"] == 0 and report["redis"]["groups"]["hot"]["pending"] == 0
    assert report["redis"]["groups"]["cold"]["lag"] == 1_531 and report["redis"]["groups"]["cold"]["pending"] == 0
    assert report["hot"]["ticks_today"] == 1_500 and report["hot"]["mode"] == "postgres"
    assert report["hot"]["extension_version"] is None
    assert report["cold"]["ticks_today"] == 0
    # per venue: symbols with ticks, and how many the recorded universe lists (the lake has none recorded)
    assert report["hot"]["venues_today"] == {"KRX": {"symbols": 3, "universe": 3}, "NXT": {"symbols": 1, "universe": 1}}
    assert report["cold"]["venues_today"] == {"KRX": {"symbols": 0, "universe": None}, "NXT": {"symbols": 0, "universe": None}}
    # positions: what Redis holds and handed out vs what each store committed
    last_id = client.xinfo_stream(settings.stream)["last-generated-id"]
    assert report["redis"]["last_id"] == last_id
    assert report["redis"]["groups"]["hot"]["last_delivered_id"] == last_id == report["hot"]["checkpoint"]
    assert report["redis"]["groups"]["cold"]["last_delivered_id"] == "0-0" and report["cold"]["checkpoint"] is None

    text = _status(settings_env(settings))
    assert text.exit_code == 0
    assert "1531 entries, dead letters 1" in text.output
    assert f"last id {last_id}" in text.output
    assert f"delivered {last_id}  committed {last_id}" in text.output
    assert "hot     1500 ticks on 2026-11-20" in text.output and "KRX 3/3 symbols, NXT 1/1 symbols" in text.output
    client.close()


def test_status_keeps_going_when_servers_are_down(settings: Settings) -> None:
    HotStore(settings).init()
    lake = Lake(settings)
    lake.init()
    lake.close()
    redis_down = _status(settings_env(settings, TICKVAULT_REDIS_URL="redis://127.0.0.1:1/0"), "--json")
    assert redis_down.exit_code == 1
    report = json.loads(redis_down.stdout)
    assert report["redis"]["state"] == "down" and "unreachable" in report["redis"]["error"]
    assert report["hot"]["state"] == "ok" and report["cold"]["state"] == "ok"
    assert "not healthy: redis down" in redis_down.stderr

    pg_down = _status(settings_env(settings, TICKVAULT_PG_URL="postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"))
    assert pg_down.exit_code == 1
    assert "hot     DOWN — PostgreSQL unreachable" in pg_down.stdout
    assert "cold    0 ticks" in pg_down.stdout and "stream  " in pg_down.stdout


def test_status_says_what_is_missing_without_creating_it(settings: Settings, tmp_path: Path) -> None:
    result = _status(settings_env(settings), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["hot"]["state"] == "missing" and "tickvault init" in report["hot"]["error"]
    assert report["cold"]["state"] == "missing"
    assert report["redis"]["state"] == "ok" and report["redis"]["groups"] == {}
    assert not Path(settings.lake_dir).exists()


@pytest.mark.timescaledb
def test_status_shows_timescaledb_mode_and_version(tsdb_settings: Settings) -> None:
    store = HotStore(tsdb_settings)
    store.init()
    store.upsert(simulated_day(symbols=2, ticks=200, seed=1))
    report = json.loads(_status(settings_env(tsdb_settings, TICKVAULT_REDIS_URL="redis://127.0.0.1:1/0"), "--json").stdout)
    assert report["hot"]["state"] == "ok" and report["hot"]["mode"] == "timescaledb"
    assert report["hot"]["extension_version"].startswith("2.") and report["hot"]["ticks_today"] == 200
