"""Settings: environment over TOML over defaults; secrets never from a readable file."""

from __future__ import annotations

import os
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
