"""A newcomer following only the README: run the demo keeping its lake, list what it archived, get
15m bars of a listed symbol into pandas, count the ticks with `tickvault sql`.

The commands are read from README.md's "A first look at the data" section and run as written
(`.venv/bin/tickvault` is this interpreter's `tickvault`; the demo gets fewer ticks to stay fast;
the servers are the test servers instead of embedded ones).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def first_look() -> tuple[list[list[str]], str]:
    """The section's shell commands (tickvault ones, as argument lists) and its Python snippet."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A first look at the data", 1)[1].split("\n## ", 1)[0]
    shell = re.search(r"```sh\n(.*?)```", section, re.S)
    python = re.search(r"```python\n(.*?)```", section, re.S)
    assert shell and python, "README.md: the first-look section has a sh and a python block"
    commands = [shlex.split(line) for line in shell.group(1).splitlines() if line.strip()]
    return commands, python.group(1)


def _tickvault(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tickvault.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_readme_first_look_works(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    commands, snippet = first_look()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env.update(TICKVAULT_PG_URL=pg_url, TICKVAULT_REDIS_URL=redis_url, TICKVAULT_HOT_MODE="postgres", TMPDIR=str(tmp_path))
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    for words in commands:
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value
            continue
        if words[0].endswith("/pip"):
            continue  # this environment has the extras installed
        assert words[0] == ".venv/bin/tickvault", words
        args = words[1:]
        if args[0] == "demo":
            args += ["--ticks", "6000"]
        result = _tickvault(args, env, tmp_path)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        outputs[args[0]] = result
    assert {"demo", "symbols", "candles", "sql"} <= set(outputs)
    assert "all checks passed" in outputs["demo"].stdout
    listed = outputs["symbols"].stdout.split()[1:-2]  # "symbol", the codes, "(N rows)"
    assert len(listed) == 20
    shown = re.search(r'candles\("(\d{6})"', snippet)
    asked = next(words[2] for words in commands if words[1:2] == ["candles"])
    assert shown and shown.group(1) == asked and asked in listed, "the README's symbol is one the demo archives"
    assert re.search(rf"\s{shown.group(1)}\s", outputs["candles"].stdout)
    generated = re.search(r"(\d+) == \1 == \1", outputs["demo"].stdout)
    assert generated and outputs["sql"].stdout.split()[1] == generated.group(1)

    pytest.importorskip("pandas")
    run = subprocess.run([sys.executable, "-c", snippet + "\nprint('ROWS', len(bars), bars.index.tz, bars.index.name)"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = re.search(r"ROWS (\d+) Asia/Seoul bucket", run.stdout)
    assert rows and int(rows.group(1)) >= 3 * 26  # at least 26 15-minute bars a day for three days
