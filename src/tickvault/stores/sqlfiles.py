"""Named SQL statements in ``.sql`` files, the one way every store keeps its SQL.

A file holds blocks, each starting with a ``-- name: <statement>`` line (comments above the
first block document the file). Inside a statement two placeholders exist, whatever the engine:

* ``{part}``  — a trusted SQL fragment or identifier filled in by the store (schema, table,
  an optional filter); never user text. Literal braces are written ``{{`` / ``}}``.
* ``:param``  — a bound value, passed to the driver as a parameter (never spliced into text).
  ``::type`` casts are not parameters.

``Statement.postgres(...)`` renders for psycopg (``%(param)s``, ``%`` escaped, identifiers via
``psycopg.sql``); ``Statement.duckdb(...)`` renders for DuckDB (``$param``). So a store's SQL reads
the same in both engines and the two candle files can stay line-for-line parallel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Statement:
    """One named statement (possibly several SQL statements separated by ``;``)."""

    name: str
    text: str

    @property
    def body(self) -> str:
        """The SQL without its full-line comments (what is sent; placeholders in comments stay inert)."""
        return "\n".join(line for line in self.text.splitlines() if not line.lstrip().startswith("--"))

    @property
    def params(self) -> frozenset[str]:
        return frozenset(_PARAM.findall(self.body))

    def postgres(self, **parts: Any) -> Any:
        """A ``psycopg.sql.Composed``; ``parts`` are ``psycopg.sql`` objects (Identifier, SQL, Literal)."""
        from psycopg import sql

        text = self.body
        if self.params:  # psycopg parses % only when parameters are passed
            text = _PARAM.sub(lambda m: f"%({m.group(1)})s", text.replace("%", "%%"))
        return sql.SQL(text).format(**parts)

    def duckdb(self, **parts: str) -> str:
        """DuckDB text; ``parts`` are trusted SQL strings (already quoted where needed) that may
        use ``:param`` placeholders themselves."""
        text = self.body.format(**parts) if parts or "{" in self.body else self.body
        return _PARAM.sub(lambda m: f"${m.group(1)}", text)

    def split(self) -> list[Statement]:
        """The single SQL statements of a multi-statement block (no ``;`` inside literals in our files)."""
        parts = [p.strip() for p in self.body.split(";") if p.strip()]
        return [Statement(f"{self.name}[{i}]", p) for i, p in enumerate(parts)]


@cache
def load(package: str, filename: str) -> dict[str, Statement]:
    """Every named statement of ``<package>/sql/<filename>``."""
    return parse(files(package).joinpath("sql", filename).read_text(encoding="utf-8"), f"{package}/sql/{filename}")


def parse(text: str, where: str = "SQL text") -> dict[str, Statement]:
    """The named statements of one file's text."""
    marks = list(_NAME_LINE.finditer(text))
    if not marks:
        raise ValueError(f"{where} has no '-- name:' block")
    out: dict[str, Statement] = {}
    for mark, following in zip(marks, marks[1:] + [None]):
        end = following.start() if following else len(text)
        name = mark.group(1)
        if name in out:
            raise ValueError(f"{where}: statement {name!r} defined twice")
        out[name] = Statement(name, text[mark.end():end].strip().rstrip(";").strip())
    return out
