"""Deployment files: docker is not runnable here, so validate what can be validated — the
compose file against the Compose Specification schema, the services and health checks the
runbook relies on, and that every TICKVAULT_* variable used in deploy/ is a real setting."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

from tickvault.core.config import CONFIG_ENV, Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
#: TICKVAULT_* names that are not settings fields but are still read by tickvault.
NOT_FIELDS = {CONFIG_ENV}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_file_matches_the_compose_spec(compose: dict) -> None:
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.validate(compose, schema, cls=jsonschema.Draft202012Validator)
    broken = dict(compose, services={"tickvault": {"image": "x", "healthcheck": {"interval": 5}}})
    with pytest.raises(jsonschema.ValidationError):  # the schema really checks something
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)


def test_services_health_checks_and_volumes(compose: dict) -> None:
    services = compose["services"]
    assert {"timescaledb", "redis", "init", "tickvault", "grafana"} <= set(services)
    for name in ("timescaledb", "redis", "tickvault", "grafana"):
        test = services[name]["healthcheck"]["test"]
        assert test and not services[name]["healthcheck"].get("disable"), name
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["tickvault"]["healthcheck"]["test"] == ["CMD", "tickvault", "health"]
    assert services["tickvault"]["command"] == ["run"]
    assert services["init"]["command"] == ["init", "--roles"]
    assert services["tickvault"]["depends_on"]["init"]["condition"] == "service_completed_successfully"

    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync everysec" in redis_cmd
    assert "--maxmemory-policy noeviction" in redis_cmd  # evicting the stream would lose ticks

    declared = set(compose["volumes"])
    mounts = {name: [v.split(":")[0] for v in svc.get("volumes", [])] for name, svc in services.items()}
    assert "redisdata" in mounts["redis"] and "redisdata" in declared
    assert "pgdata" in mounts["timescaledb"] and "pgdata" in declared
    assert "lake" in mounts["tickvault"] and "lake" in mounts["init"] and "lake" in declared
    for name, sources in mounts.items():
        for source in sources:
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} mounts undeclared volume {source}"
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
    # the runtime role is the least-privilege writer, not the superuser
    assert "TICKVAULT_PG_WRITER_ROLE" in services["tickvault"]["environment"]["TICKVAULT_PG_URL"]
    assert services["tickvault"]["environment"]["TICKVAULT_METRICS_HOST"] == "0.0.0.0"
    for published in (p for svc in services.values() for p in svc.get("ports", [])):
        assert str(published).startswith("127.0.0.1:"), f"{published} is published beyond loopback"


def _tickvault_names(text: str) -> set[str]:
    return set(re.findall(r"\bTICKVAULT_[A-Z0-9_]+", text))


def test_every_tickvault_variable_in_deploy_is_a_setting() -> None:
    fields = {f"TICKVAULT_{name.upper()}" for name in Settings.model_fields} | NOT_FIELDS
    used: dict[str, set[str]] = {}
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        for name in _tickvault_names(path.read_text(encoding="utf-8")):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert len(used) >= 10  # the scan found the compose file's variables
    unknown = {name: sorted(paths) for name, paths in used.items() if name not in fields}
    assert not unknown, f"not in config.Settings: {unknown}"
    # and the check itself catches a typo
    assert "TICKVAULT_PG_URLL" not in fields


def test_env_example_sets_what_compose_requires(compose: dict) -> None:
    env_names = set(re.findall(r"^([A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text(encoding="utf-8"), re.M))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")))
    assert required and required <= env_names, required - env_names


def test_systemd_units_are_complete() -> None:
    units = {p.name: p.read_text(encoding="utf-8") for p in (DEPLOY / "systemd").iterdir()}
    service = units["tickvault.service"]
    for line in ("ExecStart=/opt/tickvault/venv/bin/tickvault run", "KillSignal=SIGTERM", "Restart=on-failure", "[Install]"):
        assert line in service, line
    assert "OnCalendar=" in units["tickvault-maintain.timer"]
    assert "tickvault maintain" in units["tickvault-maintain.service"]
    for name, text in units.items():
        sections = re.findall(r"^\[(\w+)\]", text, re.M)
        assert sections and sections[0] == "Unit", name


def test_compose_redis_requires_the_password_from_the_env_file(compose: dict, tmp_path: Path) -> None:
    """Issue 13.15: Redis runs with protected mode on and a password from deploy/.env, which every
    client's URL carries. The service's own command runs here on a free port (with the password
    off its command line), refuses a client without the password, and its health check passes."""
    import shutil
    import socket
    import subprocess
    import time

    import redis as redis_py

    service = compose["services"]["redis"]
    command = " ".join(service["command"])
    assert "protected-mode" not in command  # the default (on) stays
    assert service["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    env_url = compose["x-tickvault"]["environment"]["TICKVAULT_REDIS_URL"]
    assert env_url.startswith("redis://:${REDIS_PASSWORD") and env_url.endswith("@redis:6379/0")
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server / redis-cli are not installed here")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    password = "pw" + str(port)
    shell = service["command"][-1].replace("$$", "$").replace("/tmp/auth.conf", str(tmp_path / "auth.conf"))
    shell = shell.replace("--bind 0.0.0.0", f"--bind 127.0.0.1 --port {port} --dir {tmp_path}")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "REDIS_PASSWORD": password}
    server = subprocess.Popen(["sh", "-c", shell], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        authed = redis_py.Redis(port=port, password=password, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert authed.ping()
                break
            except redis_py.ConnectionError:
                assert time.monotonic() < deadline, "the compose command did not start Redis"
                time.sleep(0.05)
        with pytest.raises(redis_py.AuthenticationError):
            redis_py.Redis(port=port, socket_connect_timeout=1).xlen("tickvault:ticks")
        assert authed.config_get("protected-mode")["protected-mode"] == "yes"
        assert (tmp_path / "auth.conf").stat().st_mode & 0o077 == 0
        health = service["healthcheck"]["test"][1].replace("$$", "$").replace("redis-cli", f"redis-cli -p {port}")
        assert subprocess.run(["sh", "-c", health], env=env, timeout=10).returncode == 0
        assert subprocess.run(["sh", "-c", health], env={**env, "REDIS_PASSWORD": "wrong"}, timeout=10).returncode != 0
        authed.close()
    finally:
        server.terminate()
        server.wait(timeout=10)

def test_scale_overlay_matches_the_spec_and_only_adds_what_the_profile_names(compose: dict) -> None:
    text = (DEPLOY / "docker-compose.scale.yml").read_text(encoding="utf-8")
    overlay = yaml.safe_load(text)
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.validate(overlay, schema, cls=jsonschema.Draft202012Validator)
    added = set(overlay["services"]) - set(compose["services"])
    assert added == {"seaweedfs", "timescaledb-replica", "archiver-cold"}
    assert all(overlay["services"][name]["profiles"] == ["scale"] for name in added)  # the default stack is unchanged
    scale_env = overlay["services"]["tickvault"]["environment"]
    assert scale_env["TICKVAULT_LAKE_DATA"].startswith("s3://") and scale_env["TICKVAULT_LAKE_CATALOG"].startswith("postgresql://")
    assert "timescaledb-replica" in scale_env["TICKVAULT_PG_READ_URL"]
    assert overlay["services"]["archiver-cold"]["command"] == ["archive", "cold"]
    assert overlay["services"]["archiver-cold"]["deploy"]["replicas"] >= 2
    for name, svc in overlay["services"].items():
        for source in (v.split(":")[0] for v in svc.get("volumes", [])):
            assert (DEPLOY / source).exists() if source.startswith(".") else source in overlay["volumes"], f"{name}: {source}"
    env_names = set(re.findall(r"^([A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text(encoding="utf-8"), re.M))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert required and required <= env_names, required - env_names
