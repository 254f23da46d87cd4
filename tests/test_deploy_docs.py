"""docs/configuration.md is generated from config.Settings and must be current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from tickvault.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_config_docs.py"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == _generator().render(), "docs/configuration.md is out of date: run python scripts/gen_config_docs.py"


def test_reference_lists_every_setting_with_env_name_and_default() -> None:
    text = _generator().render()
    for name, field in Settings.model_fields.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `TICKVAULT_{name.upper()}` |")), None)
        assert row is not None, name
        assert (field.description or "").split("<")[0][:20].replace("|", "\\|") in row, name
    assert "| `TICKVAULT_METRICS_PORT` | int | `9108` |" in text
    assert "| `TICKVAULT_KIS_APPKEY` | secret (optional) | unset |" in text


def test_check_mode_detects_a_stale_page(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    module = _generator()
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n", encoding="utf-8")
    module.TARGET = stale
    sys_argv = sys.argv
    sys.argv = ["gen_config_docs.py", "--check"]
    try:
        assert module.main() == 1
    finally:
        sys.argv = sys_argv
