"""The linter, the type checker and the layer contract, run as the test command runs everything else.

Each tool runs from this venv as a subprocess on the whole tree, configured in pyproject.toml; a
failure prints the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / args[0]
    if not tool.exists():
        pytest.fail(f"{args[0]} is not installed in this venv: pip install -e '.[test]'")
    return subprocess.run([str(tool), *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


def test_ruff() -> None:
    assert_clean(run_tool("ruff", "check", "--no-cache", "."))


def test_mypy() -> None:
    """Strict on the public API (tickvault, services/api.py, core/errors.py, core/config.py), normal elsewhere."""
    assert_clean(run_tool("mypy", "--no-incremental"))


def test_layers_and_no_cycles() -> None:
    """cli > ops | dev > services > stores > core, and no import cycle in any package."""
    assert_clean(run_tool("lint-imports", "--no-cache"))
