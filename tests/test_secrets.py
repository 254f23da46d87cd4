"""Secrets never leave the process in a message (issue 13.14): DSN passwords in any spelling,
values of secret settings (also under a misspelt name), and a TOML file others can read is
refused when it holds a password in a server URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from tickvault.cli import cli
from tickvault.core.config import Settings, load_settings, redact_dsn
from tickvault.core.errors import ConfigError

SECRET = "Zq8-secret-Vx3"


def clean_env(**extra: str) -> dict[str, str | None]:
    """CliRunner env: every TICKVAULT_* of this process unset, plus ``extra``."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TICKVAULT_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("dsn", [
    f"postgresql://tv:{SECRET}@127.0.0.1:1/x",
    f"host=127.0.0.1 port=1 user=tv password={SECRET} dbname=x",
    f"host=127.0.0.1 port=1 user=tv password = '{SECRET} x' dbname=x",
    f"postgresql://tv@127.0.0.1:1/x?connect_timeout=2&password={SECRET}",
])
def test_export_never_prints_a_dsn_password(dsn: str, tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["export", "--source", "hot", "--date", "2026-11-20", "--out", str(tmp_path / "d.parquet")],
                             env=clean_env(TICKVAULT_PG_URL=dsn))
    assert out.exit_code == 1
    assert "127.0.0.1" in out.output  # the operator still learns which server
    assert SECRET not in out.output, out.output


def test_redact_dsn_covers_every_spelling() -> None:
    assert redact_dsn(f"postgresql://u:{SECRET}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_dsn(f"redis://:{SECRET}@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_dsn(f"redis://h:6379/0?password={SECRET}") == "redis://h:6379/0?password=***"
    assert redact_dsn(f"host=h sslpassword={SECRET} password='{SECRET} \\' x' dbname=d") == "host=h sslpassword=*** password=*** dbname=d"
    plain = "postgresql://postgres@127.0.0.1:5432/test"
    assert redact_dsn(plain) == plain


def test_configuration_errors_never_echo_a_secret(tmp_path: Path) -> None:
    for bad in ({"kis_app_secret": SECRET}, {"kis_appsecret": 12345678, "kis_rate_per_s": SECRET}):
        with pytest.raises(ValidationError) as caught:
            Settings(**bad)  # the Python API, not only the CLI
        assert SECRET not in str(caught.value) and "12345678" not in str(caught.value)
    toml = tmp_path / "tv.toml"
    toml.write_text(f'kis_app_secret = "{SECRET}"\n')
    toml.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_settings(toml)
    assert "kis_app_secret" in str(caught.value) and SECRET not in str(caught.value)
    out = CliRunner().invoke(cli, ["--config", str(toml), "status"], env=clean_env(TICKVAULT_KIS_APPKEY=SECRET + "!"))
    assert out.exit_code == 2 and SECRET not in out.output


@pytest.mark.parametrize(("field", "url"), [
    ("pg_url", f"postgresql://tv:{SECRET}@127.0.0.1:5432/x"),
    ("pg_url", f"host=127.0.0.1 password={SECRET}"),
    ("redis_url", f"redis://:{SECRET}@127.0.0.1:6379/0"),
])
def test_a_url_with_a_password_in_a_file_others_can_read_is_refused(tmp_path: Path, field: str, url: str) -> None:
    toml = tmp_path / "tv.toml"
    toml.write_text(f'{field} = "{url}"\n')
    toml.chmod(0o644)
    with pytest.raises(PermissionError, match=f"chmod 600 .*{field}|{field}.*chmod 600"):
        load_settings(toml)
    out = CliRunner().invoke(cli, ["--config", str(toml), "status"], env=clean_env())
    assert out.exit_code == 2 and "chmod 600" in out.output and SECRET not in out.output
    toml.chmod(0o600)
    assert getattr(load_settings(toml), field) == url
    plain = {"pg_url": "postgresql://tv@127.0.0.1:5432/x", "redis_url": "redis://127.0.0.1:6379/0"}[field]
    toml.write_text(f'{field} = "{plain}"\n')
    toml.chmod(0o644)
    load_settings(toml)  # no password in it: readable by others is fine


def test_schema_names_longer_than_postgres_identifiers_are_refused(tmp_path: Path) -> None:
    """Issue 13.15: PostgreSQL truncates names to 63 bytes without a word, so two long schema
    names would silently share one installation."""
    assert Settings(pg_schema="s" * 63).pg_schema == "s" * 63
    for long_name in ("s" * 64, "tickvault_production_" + "é" * 22):  # 64 characters, or 65 bytes in 43
        with pytest.raises(ValidationError, match="at most 63"):
            Settings(pg_schema=long_name)
    out = CliRunner().invoke(cli, ["status"], env=clean_env(TICKVAULT_PG_SCHEMA="a" * 64))
    assert out.exit_code == 2 and "TICKVAULT_PG_SCHEMA" in out.output and "63" in out.output
