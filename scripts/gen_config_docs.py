#!/usr/bin/env python3
"""Write docs/configuration.md from tickvault.core.config.Settings (run after adding a setting).

Sections follow the ``# --- title`` comments in config.py, so the reference reads in the
same order as the code. ``--check`` exits 1 when the committed page is out of date.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import typing
from datetime import time
from pathlib import Path

from pydantic import SecretStr

from tickvault.core import config
from tickvault.core.config import CONFIG_ENV, SessionHours, Settings

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "configuration.md"

HEADER = f"""# Configuration reference

Generated from `tickvault.core.config.Settings` by `scripts/gen_config_docs.py` — do not edit by hand;
change the setting's description in `config.py` and run `python scripts/gen_config_docs.py`.

Every option can be set as an environment variable (`TICKVAULT_<NAME>`), or in a TOML file named
by `--config FILE` / `{CONFIG_ENV}` (keys are the lowercase names, e.g. `pg_schema = "tv"`);
environment variables win over the file. Secrets are never printed or logged; keep them in the
environment or in a file readable only by the service user (mode 0600): a TOML file holding a
secret that others can read is refused (a `pg_url` or `redis_url` with a password counts as one).
Messages show server addresses with the password replaced by `***`.
"""


def sections() -> list[tuple[str, list[str]]]:
    """(section title, field names) in source order, from the ``# --- title`` comments."""
    source = inspect.getsource(config.Settings)
    out: list[tuple[str, list[str]]] = [("general", [])]
    for line in source.splitlines():
        heading = re.match(r"\s*# ---\s*(.+)", line)
        if heading:
            out.append((heading.group(1).strip(), []))
            continue
        field = re.match(r"\s{4}(\w+)\s*:\s*[^=]+=\s*Field\(", line)
        if field and field.group(1) in Settings.model_fields:
            out[-1][1].append(field.group(1))
    listed = {name for _, names in out for name in names}
    missing = [name for name in Settings.model_fields if name not in listed]
    if missing:
        out.append(("other", missing))
    return [(title, names) for title, names in out if names]


def type_name(annotation: object) -> str:
    if annotation is SecretStr:
        return "secret"
    if annotation is time:
        return "`HH:MM` (KST)"
    if annotation is SessionHours:
        return "`HH:MM-HH:MM` (KST)"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    args = typing.get_args(annotation)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return " or ".join(type_name(a) for a in inner) + " (optional)"
    return getattr(annotation, "__name__", str(annotation))


def default_text(name: str) -> str:
    value = Settings.model_fields[name].default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, time):
        return f"`{value:%H:%M}`"
    return f"`{value}`"


def render() -> str:
    lines = [HEADER]
    for title, names in sections():
        lines.append(f"\n## {title[0].upper()}{title[1:]}\n")
        lines.append("| variable | type | default | meaning |")
        lines.append("|---|---|---|---|")
        for name in names:
            field = Settings.model_fields[name]
            description = (field.description or "").replace("|", "\\|").replace("<", "\\<")
            lines.append(f"| `TICKVAULT_{name.upper()}` | {type_name(field.annotation)} | {default_text(name)} | {description} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print("docs/configuration.md is out of date: run python scripts/gen_config_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(Settings.model_fields)} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
