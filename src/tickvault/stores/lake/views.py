"""`tickvault lake-sql`: a DuckDB script that opens this installation's lake for people.

The ``candles`` table macro is not a second implementation: its body is ``sql/candles.sql``
(the query `tickvault candles --source cold` runs), with the Python-side parameters replaced
by macro parameters and the trading-date grid computed from a calendar table that the script
carries (``core.calendar``, rendered for a range of years).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from ...core import calendar as krx
from ...core.errors import ConfigError, QueryError
from ..sqlfiles import load
from .connection import attach_sql, is_lock_error, open_connection, retry_locked
from .location import LakeLocation


def _scale_prelude(where: Path | LakeLocation) -> str:
    """For a catalog on PostgreSQL or data on S3: the extensions, and the CREATE SECRET with the
    secret left for the reader to fill in (a script on disk never holds it)."""
    if not isinstance(where, LakeLocation):
        return ""
    lines = (["LOAD postgres_scanner;"] if where.on_postgres else []) + (["LOAD httpfs;"] if where.on_s3 else [])
    secret = where.secret_sql(secret="<your S3 secret key>")
    if secret:
        lines.append(f"{secret};")
    return "".join(line + "\n" for line in lines)


def _dates(days: list[date]) -> str:
    return ", ".join(f"'{d.isoformat()}'" for d in days)


def macro_core() -> str:
    """sql/candles.sql with its placeholders bound to the macro's parameters."""
    lines = load(__package__, "candles.sql")["candles"].text.splitlines()
    body = "\n".join(line for line in lines if not line.startswith("--"))
    first = "CAST(first_day AS DATE)"
    last = "CAST(last_day AS DATE)"
    days = (
        "(SELECT day_no, "
        "CASE WHEN tv_tf_us(tf) > 0 THEN open_us - ((open_us - midnight_us + tv_tf_us(tf) - 1) // tv_tf_us(tf)) * tv_tf_us(tf) "
        "ELSE midnight_us END AS base_us, "
        "CASE tf WHEN '1w' THEN week_label_us WHEN '1mo' THEN month_label_us ELSE midnight_us END AS label_us, "
        f"open_us AS reg_start_us, reg_end_us FROM tv_calendar WHERE day BETWEEN {first} AND {last})"
    )
    replacements = {
        "{ticks}": "lake.ticks",
        "{days}": days,
        "{prune}": f"k.trade_date BETWEEN {first} AND {last}",
        "{symbols}": "(symbols IS NULL OR list_contains(symbols, k.symbol))",
        "{venues}": "(upper(venue) = 'ALL' OR k.venue = upper(venue))",
        ":consolidated": "(upper(venue) = 'ALL')",
        ":venue_label": "upper(venue)",
        ":width_us": "tv_tf_us(tf)",
        ":start": f"tv_day_start({first})",
        ":end": f"tv_day_start({last} + 1)",
        ":all_sessions": "(CASE session WHEN 'extended' THEN true WHEN 'all' THEN true WHEN 'regular' THEN false "
        "ELSE error('session must be regular or extended') END)",
    }
    for key, value in replacements.items():
        body = body.replace(key, value)
    return body


def lake_script(where: Path | LakeLocation, first_year: int, last_year: int, read_only: bool = True, attached: bool = False) -> str:
    """The whole script: LOAD, ATTACH, the ticks view, tv_calendar, the candles macro
    (``attached``: without the ATTACH, for a connection that has the lake attached already)."""
    if not krx.FIRST_YEAR <= first_year <= last_year <= first_year + 60:
        raise ConfigError(f"calendar years {first_year}–{last_year} make no sense: pick e.g. --first-year 2015 --last-year 2027")
    # from a week early, so the first ISO week's label is its real first trading date
    days = krx.trading_days(date(first_year, 1, 1) - timedelta(days=7), date(last_year, 12, 31))
    late = [krx.session(d) for d in days]
    late = [s for s in late if s.late_open or s.close.hour != 15]
    minutes = lambda t: t.hour * 60 + t.minute  # noqa: E731
    template = load(__package__, "views.sql")["script"].text
    values = {
        "duckdb_version": duckdb.__version__,
        "first_year": str(first_year),
        "last_year": str(last_year),
        "attach": "" if attached else
                  _scale_prelude(where) + attach_sql(where.for_script() if isinstance(where, LakeLocation) else where, read_only=read_only),
        "days": _dates(days),
        "late_days": _dates([s.day for s in late]),
        "late_open": ", ".join(str(minutes(s.open.timetz())) for s in late),
        "late_close": ", ".join(str(minutes(s.close.timetz())) for s in late),
    }
    script = template.format(**values, core="{core}")
    return script.replace("{core}", macro_core())


def open_console(location: LakeLocation, first_year: int, last_year: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake (local, or on PostgreSQL + S3) attached READ_ONLY and the
    script above run: the ``ticks`` view, the ``candles(...)`` macro and ``tv_calendar`` — what
    `tickvault sql` queries. The caller checks that the lake exists."""
    script = lake_script(location, first_year, last_year, read_only=True, attached=True)
    con = open_connection(location, read_only=True)
    try:
        retry_locked(f"open the lake at {location.describe()}", lambda: con.execute(script))
    except BaseException:
        con.close()
        raise
    return con


def run_query(con: duckdb.DuckDBPyConnection, text: str) -> pa.Table:
    """A person's query (one or more statements; the last one's rows) as an Arrow table; a mistake in it is a QueryError."""
    def run() -> pa.Table:
        result = con.execute(text)
        if result.description is None:
            return pa.table({})
        return result.to_arrow_table()

    try:
        return retry_locked("run the query", run)
    except duckdb.Error as exc:
        if is_lock_error(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QueryError(f"DuckDB: {first}") from None
