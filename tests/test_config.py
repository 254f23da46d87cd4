"""Settings: environment over TOML over defaults; secrets never from a readable file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tickvault.cli import cli
from tickvault.core.config import CONFIG_ENV, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TICKVAULT_"):
            monkeypatch.delenv(name)


def test_environment_overrides_the_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tickvault.toml"
    path.write_text('pg_schema = "from_file"\nstream = "file:ticks"\nhot_batch_size = 123\n')
    monkeypatch.setenv("TICKVAULT_STREAM", "env:ticks")
    settings = load_settings(path)
    assert (settings.pg_schema, settings.stream, settings.hot_batch_size) == ("from_file", "env:ticks", 123)
    assert settings.dlq_stream == "env:ticks:dlq"
    assert CONFIG_ENV not in os.environ  # loading a file leaves no trace in the environment


def test_missing_file_and_unknown_option_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_settings(tmp_path / "absent.toml")
    path = tmp_path / "bad.toml"
    path.write_text('pg_shema = "typo"\n')
    with pytest.raises(ValueError, match="pg_shema"):
        load_settings(path)
    assert CONFIG_ENV not in os.environ  # loading a file leaves no trace in the environment


def test_secrets_only_from_a_file_nobody_else_can_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.toml"
    path.write_text('kis_appkey = "PSabcdefghijkl"\nkis_appsecret = "very-secret-value"\n')
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600") as err:
        load_settings(path)
    assert "very-secret-value" not in str(err.value)
    path.chmod(0o600)
    settings = load_settings(path)
    assert settings.kis_appsecret is not None and settings.kis_appsecret.get_secret_value() == "very-secret-value"
    assert "very-secret-value" not in repr(settings)
    assert CONFIG_ENV not in os.environ  # loading a file leaves no trace in the environment


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text('kiwoom_secretkey = "s3cr3t"\n')
    path.chmod(0o640)
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2
    assert "bad configuration" in result.output and "chmod 600" in result.output
    assert "s3cr3t" not in result.output
    assert CONFIG_ENV not in os.environ


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("TICKVAULT_COMPACT_TIME", "25:00", "want HH:MM in KST (00:00 to 23:59), got '25:00'"),
    ("TICKVAULT_COMPACT_TIME", "4pm", "want HH:MM in KST"),
    ("TICKVAULT_RECOVERY_MARGIN_MINUTES", "500", "less than or equal to 180"),
    ("TICKVAULT_RECONCILE_FINAL_TIME", "18:60", "want HH:MM in KST"),
    ("TICKVAULT_COLLECT_SESSION_HOURS", "9-5", "want HH:MM-HH:MM in KST"),
])
def test_bad_schedule_settings_stop_the_process_at_start_up(variable: str, value: str, message: str, tmp_path: Path) -> None:
    """Before any component starts (`run` would otherwise only fail inside the job at that time)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env.update({variable: value, "TICKVAULT_REDIS_URL": "redis://127.0.0.1:1/0", "TICKVAULT_LAKE_DIR": str(tmp_path / "lake")})
    for command in (["run"], ["collect", "kis", "--symbols", "005930"]):
        result = subprocess.run([sys.executable, "-m", "tickvault.cli", *command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"tickvault: bad configuration: {variable} ")
        assert message in lines[0] and result.stdout == ""
    assert not (tmp_path / "lake").exists()


def test_schedule_times_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_COMPACT_TIME", "7:05")
    monkeypatch.setenv("TICKVAULT_COLLECT_SESSION_HOURS", "00:00-24:00")
    settings = load_settings()
    assert settings.compact_time == time(7, 5) and settings.reconcile_final_time == time(20, 15)
    assert time(23, 59) in settings.collect_session_hours and time(8, 0) not in load_settings(collect_session_hours="08:30-18:10").collect_session_hours
    assert settings.model_dump(mode="json")["compact_time"] == "07:05"
    assert str(settings.collect_session_hours) == "00:00-24:00"

