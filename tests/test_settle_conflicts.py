"""Issue 13.4, the rule: `reconcile --repair` settles conflicting duplicates (a key both stores
hold with different price/volume/side). The broker's trade wins when a broker lists it; without
it the earliest-received copy wins. The winner is written to both stores, hot candles are rebuilt
for the affected days, every change is reported, and verify passes afterwards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from factories import day_ticks
from helpers import settings_env, store_both
from standins.broker_http import make_truth_day
from standins.kis_rest import KisRestStandin
from tickvault.cli import cli
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.errors import StoreError
from tickvault.core.wire import Tick, ticks_to_table
from tickvault.services.brokers.kis import KisClient
from tickvault.services.recovery.planner import today_kst
from tickvault.services.recovery.settle import broker_values
from tickvault.services.recovery.sources import KisSource
from tickvault.services.sync import verify
from tickvault.services.sync.reconcile import Conflict, reconcile, settle
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.roles import create_roles
from tickvault.stores.lake import Lake
from truth import stored_candles, truth_candles

DAY = date(2026, 11, 20)
LEVELS = ("1m", "5m", "1h", "1d")
KIS_KEY, KIS_SECRET = "PSsettleKisKey0123456789ab", "settleKisSecret/+=ZYXWVU987654"


def _changed(t: Tick, price: Decimal, later: timedelta, side: str | None = None) -> Tick:
    return Tick(t.symbol, t.ts, price, t.volume, t.cum_volume, side if side is not None else t.side, "other",
                t.received_at + later, t.venue)


def _ticks(table: pa.Table) -> list[Tick]:
    return [Tick(r["symbol"], r["ts"], r["price"], r["volume"], r["cum_volume"], r["side"], r["source"], r["received_at"], r["venue"])
            for r in table.to_pylist()]


def _values(table: pa.Table) -> list[tuple]:
    return sorted((r["venue"], r["symbol"], r["ts"], r["cum_volume"], r["price"], r["volume"], r["side"])
                  for r in table.to_pylist())


def _assert_settled(settings: Settings, day: date, expected: list[Tick]) -> None:
    """Both stores hold exactly ``expected`` (trade values), verify passes, hot candles = truth."""
    window = trading_day_bounds(day)
    want = _values(ticks_to_table(expected))
    hot, lake = HotStore(settings), Lake(settings)
    try:
        assert _values(hot.read_ticks(*window)) == want
        assert _values(lake.read_ticks(*window)) == want
        with hot.connect() as conn:
            for level in LEVELS:
                assert stored_candles(conn, hot.schema, level) == truth_candles(expected, level), level
    finally:
        hot.close()
        lake.close()
    assert verify(settings, day).consistent


def test_repair_keeps_the_earliest_received_copy_in_both_stores_and_rebuilds_candles(settings: Settings) -> None:
    _earliest_received_wins(settings)


@pytest.mark.timescaledb
def test_repair_settles_conflicts_in_timescaledb_mode(tsdb_settings: Settings) -> None:
    _earliest_received_wins(tsdb_settings)


def _earliest_received_wins(settings: Settings) -> None:
    ticks = day_ticks(DAY, ["005930", "000660"], 60, seed=13)
    ticks = [t if t.received_at is not None else _changed(t, t.price, timedelta(0)) for t in ticks]
    hot_ticks, cold_ticks = list(ticks), list(ticks)
    # key 17: hot's copy came first; key 75 (the other symbol): cold's copy came first
    hot_ticks[75] = _changed(ticks[75], ticks[75].price + 7, timedelta(seconds=3))
    cold_ticks[17] = _changed(ticks[17], ticks[17].price - 1, timedelta(seconds=2), side="S" if ticks[17].side != "S" else "B")
    store_both(settings, ticks_to_table(hot_ticks), ticks_to_table(cold_ticks))
    assert not verify(settings, DAY).consistent

    named = CliRunner().invoke(cli, ["reconcile", "--date", DAY.isoformat()], env=settings_env(settings))
    assert named.exit_code != 0 and "2 conflicting duplicate(s)" in named.output  # without --repair nothing changes

    out = CliRunner().invoke(cli, ["reconcile", "--date", DAY.isoformat(), "--repair"], env=settings_env(settings))
    assert out.exit_code == 0, out.output
    settled = [line for line in out.output.splitlines() if line.startswith("settled ")]
    assert len(settled) == 2, out.output
    assert all("(earliest received)" in line for line in settled)
    assert any("replaced in cold" in line and f"cum_volume {ticks[17].cum_volume}" in line for line in settled)
    assert any("replaced in hot" in line and f"cum_volume {ticks[75].cum_volume}" in line for line in settled)
    _assert_settled(settings, DAY, ticks)

    again = reconcile(settings, DAY, repair=True, settle_conflicts_too=True)
    assert again.consistent and not again.conflicts and not again.settled


def test_repair_takes_the_brokers_trade_when_the_broker_lists_it(settings: Settings, tmp_path) -> None:
    day = today_kst()  # brokers list trades only for the current day
    truth = make_truth_day(day, ["005930"], 120, seed=5)
    rows = truth.to_pylist()
    hot_rows, cold_rows = [dict(r) for r in rows], [dict(r) for r in rows]
    # key 30: cold's wrong copy was received first — the broker's trade (hot's copy) must still win
    hot_rows[30]["received_at"] = rows[30]["ts"] + timedelta(seconds=10)
    cold_rows[30] |= {"price": rows[30]["price"] + 5, "source": "other", "received_at": rows[30]["ts"] + timedelta(seconds=1)}
    # key 60: both copies are wrong — the broker's values are written to both stores
    hot_rows[60] |= {"price": rows[60]["price"] + 1, "source": "other"}
    cold_rows[60] |= {"volume": rows[60]["volume"] + 1, "source": "other"}
    store_both(settings, pa.Table.from_pylist(hot_rows, schema=truth.schema), pa.Table.from_pylist(cold_rows, schema=truth.schema))

    with KisRestStandin(truth, day, KIS_KEY, KIS_SECRET) as server:
        s = settings.model_copy(update={"kis_appkey": SecretStr(KIS_KEY), "kis_appsecret": SecretStr(KIS_SECRET),
                                        "kis_base_url": server.url, "broker_token_dir": tmp_path / "tokens"})
        source = KisSource(KisClient(s))
        try:
            report = reconcile(s, day, repair=True, settle_conflicts_too=True, broker_values=broker_values(source, day, day))
        finally:
            source.close()
    assert report.consistent, report.reasons()
    by_cum = {st.conflict.cum_volume: st for st in report.settled}
    assert set(by_cum) == {rows[30]["cum_volume"], rows[60]["cum_volume"]}
    assert all(st.rule == "broker" for st in report.settled)
    assert by_cum[rows[30]["cum_volume"]].changed == ("cold",)
    assert by_cum[rows[60]["cum_volume"]].changed == ("hot", "cold")
    assert by_cum[rows[60]["cum_volume"]].value["source"] == "recovery"
    expected = [dict(r) for r in rows]
    expected[30]["received_at"] = hot_rows[30]["received_at"]
    expected[60]["side"] = None  # brokers list no side: the broker's trade is stored as recovery stores it
    _assert_settled(settings, day, _ticks(pa.Table.from_pylist(expected, schema=truth.schema)))


def test_replacing_as_the_writer_role_fails_with_one_line_and_changes_nothing(settings: Settings, test_id: str) -> None:
    s = settings.model_copy(update={"pg_writer_role": f"tvtest_{test_id}_w", "pg_reader_role": f"tvtest_{test_id}_r"})
    ticks = ticks_to_table(day_ticks(DAY, ["005930"], 10, seed=3))
    owner = HotStore(s)
    owner.init()
    owner.upsert(ticks)
    try:
        create_roles(owner)
        writer_url = make_conninfo(**{**conninfo_to_dict(s.pg_dsn), "user": s.pg_writer_role})
        writer = HotStore(s.model_copy(update={"pg_url": writer_url}))
        row = ticks.slice(3, 1).to_pylist()[0]
        changed = pa.Table.from_pylist([row | {"price": row["price"] + 1}], schema=ticks.schema)
        with pytest.raises(StoreError) as refused:
            writer.replace(changed)
        writer.close()
        assert "schema owner" in str(refused.value) and "\n" not in str(refused.value)
        assert _values(owner.read_ticks(*trading_day_bounds(DAY))) == _values(ticks)
    finally:
        owner.close()
        with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
            for role in (s.pg_writer_role, s.pg_reader_role):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                    continue
                conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
                conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))


def test_the_rule_for_one_conflict() -> None:
    """settle() alone: the broker's trade picks the copy with its price and volume (the earliest
    received when both have them), its own values when neither does; else the earliest received."""
    ts = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    first, later = ts + timedelta(seconds=1), ts + timedelta(seconds=2)
    hot = {"price": Decimal("100"), "volume": 5, "side": "B", "source": "kis", "received_at": later}
    cold = {"price": Decimal("100"), "volume": 5, "side": "S", "source": "kiwoom", "received_at": first}
    conflict = Conflict("KRX", "005930", ts, 42, hot, cold)
    assert settle(conflict, None, ts).value == cold and settle(conflict, None, ts).changed == ("hot",)
    assert settle(conflict, (Decimal("100"), 5), ts).value == cold  # both carry the broker's values: earliest received
    other = Conflict("KRX", "005930", ts, 42, hot, {**cold, "price": Decimal("101")})
    by_broker = settle(other, (Decimal("100"), 5), ts)
    assert (by_broker.rule, by_broker.value, by_broker.changed) == ("broker", hot, ("cold",))
    neither = settle(other, (Decimal("99"), 5), ts)
    assert neither.value == {"price": Decimal("99"), "volume": 5, "side": None, "source": "recovery", "received_at": ts}
    assert neither.changed == ("hot", "cold")
