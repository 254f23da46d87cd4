"""The DuckDB script for people (`tickvault lake-sql`): its candles macro gives the Vault's
answer, its views work on a read-only attach while the lake keeps committing."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from factories import SESSIONS, session_ticks
from tickvault.core.wire import KST, ticks_to_table
from tickvault.services.api import Vault
from tickvault.stores.lake import Lake
from tickvault.stores.lake.connection import load_extensions
from tickvault.stores.lake.views import lake_script


@pytest.fixture
def lake_with_ticks(settings):
    lake = Lake(settings)
    lake.init()
    truth = session_ticks(seed=3)
    first = [t for t in truth if t.ts.astimezone(KST).date() < date(2026, 1, 5)]
    lake.upsert(ticks_to_table(first))
    yield lake, truth, len(first)
    lake.close()


@pytest.fixture
def people(settings, lake_with_ticks):
    con = duckdb.connect()
    load_extensions(con)  # what the script's LOAD lines need: the extensions from the wheels
    con.execute(lake_script(settings.lake_dir, 2025, 2026))
    yield con
    con.close()


def test_candles_macro_equals_the_vault(settings, lake_with_ticks, people) -> None:
    with Vault(settings) as vault:
        for tf in ("1m", "15m", "4h", "1d", "1w", "1mo"):
            for session in ("regular", "all"):
                expected = vault.candles(None, tf, "2025-11-12", "2026-01-05", source="cold", session=session)
                got = people.execute(
                    "SELECT * FROM candles($tf, DATE '2025-11-12', DATE '2026-01-05', session := $session)",
                    {"tf": tf, "session": session},
                ).to_arrow_table()
                assert got.num_rows == expected.num_rows > 0
                assert got.cast(expected.schema).equals(expected), (tf, session)
        one = people.execute("SELECT * FROM candles('5m', '2026-01-02', '2026-01-02', symbols := ['005930'])").to_arrow_table()
        assert one.cast(expected.schema).equals(vault.candles("005930", "5m", "2026-01-02", "2026-01-02", source="cold"))
    first_bar = one.column("bucket")[0].as_py().astimezone(KST)
    assert (first_bar.hour, first_bar.minute) == (10, 0)


def test_ticks_view_sees_new_commits_on_a_read_only_attach(lake_with_ticks, people) -> None:
    lake, truth, stored = lake_with_ticks
    assert people.execute("SELECT count(*) FROM ticks").fetchone()[0] == stored
    lake.upsert(ticks_to_table(truth))  # the archiver keeps writing
    assert people.execute("SELECT count(*) FROM ticks").fetchone()[0] == len(truth)
    days = {r[0] for r in people.execute("SELECT DISTINCT trade_date FROM ticks").fetchall()}
    assert days == set(SESSIONS)


def test_macro_rejects_bad_timeframes_and_sessions(lake_with_ticks, people) -> None:
    with pytest.raises(duckdb.Error, match="unknown timeframe 7x"):
        people.execute("SELECT * FROM candles('7x', DATE '2025-11-12', DATE '2025-11-12')").fetchall()
    with pytest.raises(duckdb.Error, match="unknown timeframe 60s"):
        people.execute("SELECT * FROM candles('60s', DATE '2025-11-12', DATE '2025-11-12')").fetchall()
    with pytest.raises(duckdb.Error, match="session must be regular or extended"):
        people.execute("SELECT * FROM candles('1m', DATE '2025-11-12', DATE '2025-11-12', session := 'pre')").fetchall()


def test_calendar_table_has_late_sessions(people) -> None:
    rows = dict(people.execute("SELECT day, open_min FROM tv_calendar WHERE open_min <> 540").fetchall())
    assert rows[date(2025, 1, 2)] == rows[date(2026, 1, 2)] == rows[date(2025, 11, 13)] == 600
    assert people.execute("SELECT count(*) FROM tv_calendar WHERE day = DATE '2026-07-17'").fetchone()[0] == 0
