"""Each store owns its SQL: named statements in its sql/ files, one loader, one placeholder
convention — and no SQL against a store's tables anywhere else in the package. Pure file checks."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

import tickvault
from tickvault.stores.sqlfiles import Statement, load

PACKAGE = Path(tickvault.__file__).parent
STORES = ("tickvault.stores.hot", "tickvault.stores.lake")
TABLES = r"(ticks|candles_\w+|integrity_report|recovery_report|hot_meta|ingest_checkpoint|metrics)"


def sql_files(package: str) -> list[str]:
    return sorted(p.name for p in files(package).joinpath("sql").iterdir() if p.name.endswith(".sql"))


@pytest.mark.parametrize("package", STORES)
def test_every_sql_file_is_named_statements(package: str) -> None:
    names = sql_files(package)
    assert names, f"{package} has no sql/ files"
    for name in names:
        statements = load(package, name)
        assert statements, name
        for statement in statements.values():
            assert statement.body.strip(), f"{name}: {statement.name} is empty"


def test_placeholders_render_for_both_engines() -> None:
    st = Statement("t", "-- :ignored {ignored}\nSELECT x::bigint % 7 FROM {table} WHERE a = :a AND t = '09:30' AND b = :b_2")
    assert st.params == {"a", "b_2"}
    assert st.duckdb(table="lake.ticks") == "SELECT x::bigint % 7 FROM lake.ticks WHERE a = $a AND t = '09:30' AND b = $b_2"
    from psycopg import sql

    def text(composed: sql.Composed) -> str:
        return "".join(part._obj if isinstance(part, sql.SQL) else "<id>" for part in composed._obj)

    assert text(st.postgres(table=sql.Identifier("s", "ticks"))) == (
        "SELECT x::bigint %% 7 FROM <id> WHERE a = %(a)s AND t = '09:30' AND b = %(b_2)s"
    )
    assert text(Statement("n", "SELECT 100 % 7").postgres()) == "SELECT 100 % 7"  # no parameters: % stays


def test_the_two_candle_statements_stay_parallel() -> None:
    """Same clause skeleton and the same output columns, in the same order, in both engines."""
    hot = load("tickvault.stores.hot", "candles.sql")["candles"].body
    lake = load("tickvault.stores.lake", "candles.sql")["candles"].body

    def skeleton(text: str) -> list[str]:
        keys = re.compile(r"^\s*(\), \w+ AS \(|WITH \w+ AS \(|SELECT\b|FROM\b|JOIN\b|WHERE\b|GROUP BY\b|ORDER BY\b)")
        return [m.group(1) for line in text.splitlines() if (m := keys.match(line))]

    def output_columns(text: str) -> list[str]:
        last_select = text[text.rindex("\nSELECT") + len("\nSELECT") :].split("FROM b")[0]
        return re.findall(r"^\s+(?:.* AS )?(\w+),?$", last_select, re.MULTILINE)

    assert output_columns(hot) == output_columns(lake) == [
        "bucket_us", "symbol", "open", "high", "low", "close", "volume", "trade_count", "turnover", "vwap", "venue",
    ]
    hot_skeleton, lake_skeleton = skeleton(hot), skeleton(lake)
    # the hot statement builds its trading-date grid from arrays (one extra CTE); the rest lines up
    assert hot_skeleton[:3] == ["WITH d AS (", "SELECT", "FROM"]
    assert hot_skeleton[3:] == ["), t AS (", "SELECT", "FROM", "SELECT", "FROM", "WHERE", "JOIN", "WHERE", "), b AS (",
                                "SELECT", "FROM", "GROUP BY", "SELECT", "FROM", "ORDER BY"]
    assert lake_skeleton == ["WITH t AS (", "SELECT", "FROM", "JOIN", "WHERE", "), b AS (", "SELECT", "FROM", "GROUP BY",
                             "SELECT", "FROM", "ORDER BY"]


def test_no_sql_against_store_tables_outside_the_stores() -> None:
    statement = re.compile(rf"\b(FROM|INTO|UPDATE|TABLE|JOIN)\s+[\w.{{}}\"]*\b{TABLES}\b")  # SQL keywords are upper case here
    offenders = []
    for path in PACKAGE.rglob("*"):
        if path.suffix not in (".py", ".sql") or "stores" in path.relative_to(PACKAGE).parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if statement.search(line) and not line.lstrip().startswith(("#", "-", "*")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "SQL against a store's tables outside stores/:\n" + "\n".join(offenders)


def test_one_loader() -> None:
    """No other module reads .sql files (or package resources) itself."""
    readers = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "sqlfiles.py" and re.search(r"importlib\.resources|read_text\(.*sql|open\(.*\.sql", path.read_text(encoding="utf-8"))
    ]
    assert readers == []
