"""Load the hot store's SQL from the .sql files next to this module."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from psycopg import sql


@cache
def sql_text(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def query(name: str, schema: str, **parts: Any) -> sql.Composed:
    """The file's SQL with ``{schema}`` (and any other ``{part}``) filled in as safe SQL."""
    return sql.SQL(sql_text(name)).format(schema=sql.Identifier(schema), **parts)
