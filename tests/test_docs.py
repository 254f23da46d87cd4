"""The documentation is tested: every ```python block of README.md and docs/queries.md runs against a
real archive (simulated trading days of November 2026 in both stores, symbols 005930, 000660 and
035420), and every CLI command is documented."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from helpers import drop_schema
from tickvault.cli import COMMANDS, cli
from tickvault.core import calendar as krx
from tickvault.core.config import Settings
from tickvault.dev.simulate import generate_day
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "docs" / "queries.md")
FIRST_DAY, LAST_DAY = date(2026, 11, 2), date(2026, 11, 27)
SYMBOLS = ("005930", "000660", "035420")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[tuple[str, int, str]]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            found.append((path.relative_to(ROOT).as_posix(), text.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


def simulated_day(day: date) -> pa.Table:
    """A small simulated day whose three symbols carry the codes the examples use."""
    table = generate_day(day, symbols=len(SYMBOLS), ticks=1_200, seed=5)
    codes = sorted(set(table.column("symbol").to_pylist()))
    renamed = table.column("symbol")
    for code, name in zip(codes, SYMBOLS):
        renamed = pc.if_else(pc.equal(table.column("symbol"), code), name, renamed)
    return table.set_column(table.schema.get_field_index("symbol"), "symbol", renamed)


@pytest.fixture(scope="module")
def archive(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Every trading day of the examples' range in the hot store and the lake."""
    test_id = uuid.uuid4().hex[:10]
    settings = Settings(pg_url=pg_url, pg_schema=f"t_{test_id}", lake_dir=tmp_path_factory.mktemp("docs") / "lake", hot_mode="postgres")
    hot, lake = HotStore(settings), Lake(settings)
    hot.init()
    lake.init()
    for day in krx.trading_days(FIRST_DAY, LAST_DAY):
        table = simulated_day(day)
        assert hot.upsert(table) == lake.upsert(table) == table.num_rows
    lake.close()
    hot.close()
    yield settings
    drop_schema(pg_url, settings.pg_schema)


@pytest.fixture
def reader(archive: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A reader's shell: TICKVAULT_* name the archive, the working directory is empty but for the
    `tickvault lake-sql --out lake.sql` script the DuckDB example reads."""
    for name in [n for n in os.environ if n.startswith("TICKVAULT_")]:
        monkeypatch.delenv(name)
    for name, value in (("PG_URL", archive.pg_dsn), ("PG_SCHEMA", archive.pg_schema), ("LAKE_DIR", str(archive.lake_dir)),
                        ("HOT_MODE", archive.hot_mode)):
        monkeypatch.setenv(f"TICKVAULT_{name}", value)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["lake-sql", "--out", "lake.sql"])
    assert result.exit_code == 0, result.output
    return tmp_path


@pytest.mark.parametrize(("where", "line", "code"), python_blocks(), ids=lambda v: v if isinstance(v, str) and "\n" not in v else None)
def test_python_examples_run(reader: Path, where: str, line: int, code: str) -> None:
    exec(compile(code, f"{where}:{line}", "exec"), {"__name__": "__docs__"})


def test_the_examples_are_found() -> None:
    blocks = python_blocks()
    assert {w for w, _, _ in blocks} == {"README.md", "docs/queries.md"}
    assert len(blocks) >= 6


def test_readme_starts_with_the_demo_install() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_sh = re.search(r"^```sh\n(.*?)^```", text, re.S | re.M)
    assert first_sh is not None
    assert first_sh.group(1).strip() == "python3 -m venv .venv && .venv/bin/pip install -e '.[demo]' && .venv/bin/tickvault demo"


def _readme_commands() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    named = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            for span in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
                named.add(span.removeprefix("tickvault ").split()[0])
    return named


def test_every_command_is_documented() -> None:
    """Each command is in the README's command table and described as `tickvault <command>` in docs/;
    each subcommand of a group is named there too."""
    docs = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))
    missing_readme = sorted(set(COMMANDS) - _readme_commands())
    assert not missing_readme, f"commands missing from README.md's command table: {missing_readme}"
    ctx = click.Context(cli)
    missing_docs = []
    for name in sorted(COMMANDS):
        command = cli.get_command(ctx, name)
        names = [f"{name} {sub}" for sub in command.commands] if isinstance(command, click.Group) else [name]
        missing_docs += [n for n in names if not re.search(rf"tickvault {re.escape(n)}\b", docs)]
    assert not missing_docs, f"commands not described in docs/*.md: {missing_docs}"
