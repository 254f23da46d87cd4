"""The two stores as seen by sync: the same few queries, one SQL file per engine.

Sync runs its checks as single aggregate queries inside each engine (PostgreSQL for hot,
DuckDB for the lake) and only ever brings small results into Python. Reads never lock the
tick tables: PostgreSQL readers don't block writers (MVCC), and lake reads retry the rare
catalog lock collision instead of holding anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any, Protocol

import pyarrow as pa
from psycopg import sql

from ...core.config import Settings


@cache
def sql_text(name: str) -> str:
    return files(__package__).joinpath("sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def split_statements(text: str) -> list[str]:
    """Statements of a multi-statement file (no semicolons inside literals in our files)."""
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def store_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this store cannot be read right now" (reported, retried later)."""
    import duckdb
    import psycopg

    from ...stores.lake import LakeLockedError

    return (psycopg.Error, duckdb.Error, LakeLockedError, OSError, TimeoutError)


class Side(Protocol):
    """One store, for sync's purposes."""

    name: str  # "hot" or "cold"

    def rows(self, query: str, start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[dict[str, Any]]: ...

    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> pa.Table: ...

    def upsert(self, ticks: pa.Table) -> int: ...

    def close(self) -> None: ...


class HotSide:
    """The hot store (PostgreSQL / TimescaleDB) through HotStore's connections."""

    name = "hot"

    def __init__(self, settings: Settings, store: Any = None):
        from ...stores.hot import HotStore

        self.settings = settings
        self.store = store if store is not None else HotStore(settings)
        self._owned = store is None

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.settings.pg_schema, name)

    def rows(self, query: str, start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[dict[str, Any]]:
        statement = sql.SQL(sql_text(f"hot_{query}")).format(ticks=self.table("ticks"))
        params = {"start": start, "end": end, "symbols": list(symbols or [])}
        with self.store.connect() as conn:
            cur = conn.execute(statement, params)
            names = [d.name for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> pa.Table:
        return self.store.read_ticks(start, end, symbols)

    def upsert(self, ticks: pa.Table) -> int:
        return self.store.upsert(ticks)

    def close(self) -> None:
        if self._owned:
            self.store.close()


class LakeSide:
    """The cold lake (DuckLake) through one DuckDB connection of its own."""

    name = "cold"

    def __init__(self, settings: Settings, lake: Any = None):
        from ...stores.lake import Lake

        self.settings = settings
        self.lake = lake if lake is not None else Lake(settings)
        self._owned = lake is None
        self._con = None

    def connection(self):
        if self._con is None:
            # no lake.init() here: attaching costs ~1 s, and a missing lake is reported as such
            self._con = self.lake.connect()
        return self._con

    def execute(self, what: str, statement: str, params: dict[str, Any] | None = None):
        from ...stores.lake import retry_locked

        return retry_locked(what, lambda: self.connection().execute(statement, params or {}))

    def rows(self, query: str, start: datetime, end: datetime, symbols: Sequence[str] | None) -> list[dict[str, Any]]:
        from ...stores.lake import retry_locked

        def run() -> list[dict[str, Any]]:
            cur = self.connection().execute(sql_text(f"lake_{query}"), {"start": start, "end": end, "symbols": list(symbols or [])})
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

        return retry_locked(f"read {query} of the lake", run)

    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> pa.Table:
        return self.lake.read_ticks(start, end, symbols)

    def upsert(self, ticks: pa.Table) -> int:
        return self.lake.upsert(ticks)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._owned:
            self.lake.close()


def open_sides(settings: Settings, source: str) -> list[Side]:
    """The stores named by ``source`` ("hot", "cold" or "both"), hot first."""
    if source not in ("hot", "cold", "both"):
        raise ValueError(f"source must be hot, cold or both, not {source!r}")
    sides: list[Side] = []
    if source in ("hot", "both"):
        sides.append(HotSide(settings))
    if source in ("cold", "both"):
        sides.append(LakeSide(settings))
    return sides
