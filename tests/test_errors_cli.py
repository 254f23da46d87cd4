"""docs/errors.md, run: every mistake in the table ends in exactly one stderr line with the right advice.

Each case runs the real `tickvault` process (a traceback or a stray log line would show on its
stderr) and its id must be a row of the table, with the message the process printed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from helpers import subprocess_env
from tickvault.core.config import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


@dataclass
class Mistake:
    id: str
    args: list[str]
    expected: str  # a fragment of the one stderr line
    env: dict[str, str] = field(default_factory=dict)  # "" removes the variable
    code: int = 1
    toml: str | None = None  # written to tickvault.toml in the working directory


def _with_database(url: str, *, database: str | None = None, user: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{user}@{netloc}" if user else parts.netloc
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}" if database else parts.path))


def mistakes(settings: Settings) -> list[Mistake]:
    no_db = _with_database(settings.pg_dsn, database="tv_no_such_db")
    return [
        Mistake("missing-database", ["init", "--no-cold"], "database tv_no_such_db does not exist: create it", {"TICKVAULT_PG_URL": no_db}),
        Mistake("wrong-role", ["init", "--no-cold"], "PostgreSQL refused the login",
                {"TICKVAULT_PG_URL": _with_database(settings.pg_dsn, user="tv_no_such_role")}),
        Mistake("verify-missing-database", ["verify", "--date", "2026-11-27", "--source", "hot"], "not verified: hot store:",
                {"TICKVAULT_PG_URL": no_db}),
        Mistake("malformed-pg-url", ["init", "--no-cold"], "TICKVAULT_PG_URL is not a PostgreSQL URL", {"TICKVAULT_PG_URL": "postgres:/x y"}),
        Mistake("redis-down", ["archive", "all"], "check TICKVAULT_REDIS_URL", {"TICKVAULT_REDIS_URL": "redis://127.0.0.1:1/0"}),
        Mistake("out-missing-directory", ["candles", "005930", "--tf", "15m", "--start", "today", "--out", "reports/x.csv"],
                "directory", code=2),
        Mistake("toml-syntax", ["--config", "tickvault.toml", "status"], "TOML syntax error", code=2,
                toml='pg_schema = "a"\nlake_dir = "unterminated\n'),
        Mistake("toml-unknown-key", ["--config", "tickvault.toml", "status"], "did you mean lake_dir? TOML keys are lowercase", code=2,
                toml='lake_dri = "lake"\n'),
        Mistake("toml-env-style-key", ["--config", "tickvault.toml", "status"], "write pg_schema", code=2,
                toml='TICKVAULT_PG_SCHEMA = "tv"\n'),
        Mistake("config-after-command", ["lake-sql", "--config", "tickvault.toml"], "no lake at elsewhere", {"TICKVAULT_LAKE_DIR": ""}, code=2,
                toml='lake_dir = "elsewhere"\n'),
        Mistake("bad-date", ["candles", "005930", "--tf", "1d", "--start", "2026.11.20"], "is neither a date", code=2),
    ]


def _table_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[a-z-]+", cells[0]) and cells[0] != "id":
            rows[cells[0]] = cells[3]
    return rows


def _run(settings: Settings, mistake: Mistake, cwd: Path) -> subprocess.CompletedProcess[str]:
    if mistake.toml is not None:
        (cwd / "tickvault.toml").write_text(mistake.toml)
        (cwd / "tickvault.toml").chmod(0o600)
    env = {k: v for k, v in subprocess_env(settings, **mistake.env).items() if v}
    return subprocess.run([sys.executable, "-m", "tickvault.cli", *mistake.args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_every_mistake_in_the_table_gives_one_line(settings: Settings, tmp_path: Path) -> None:
    rows = _table_rows()
    cases = mistakes(settings)
    assert {m.id for m in cases} <= set(rows), "every case is a row of docs/errors.md"
    for mistake in cases:
        where = tmp_path / mistake.id
        where.mkdir()
        result = _run(settings, mistake, where)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == mistake.code, (mistake.id, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("tickvault: "), (mistake.id, result.stderr)
        assert mistake.expected in lines[0], (mistake.id, lines[0])
        assert "Traceback" not in result.stderr


def test_the_table_names_the_variable_the_messages_name() -> None:
    rows = _table_rows()
    assert "TICKVAULT_REDIS_URL" in rows["redis-down"] and "TICKVAULT_PG_URL" in rows["malformed-pg-url"]
    assert {"json-flag", "unknown-snapshot", "config-after-command"} <= set(rows)


def test_debug_shows_the_traceback(settings: Settings, tmp_path: Path) -> None:
    mistake = mistakes(settings)[0]
    mistake.args = ["--log-level", "debug", *mistake.args]
    result = _run(settings, mistake, tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr and "tv_no_such_db" in result.stderr


@pytest.mark.parametrize("args", [["status", "--log-level", "WARNING", "--config", "x.toml"], ["status", "--config=x.toml"]])
def test_global_options_are_accepted_after_the_subcommand(args: list[str]) -> None:
    from tickvault.cli import hoist_global_options

    moved = hoist_global_options(args)
    assert moved[-1] == "status" and any(a.startswith("--config") for a in moved[:-1])
    assert hoist_global_options(["sql", "--", "--config"]) == ["sql", "--", "--config"]
