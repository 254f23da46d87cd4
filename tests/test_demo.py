"""`tickvault demo` as a user runs it (a subprocess), on the test servers and on embedded ones."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import psutil
import psycopg
import pyarrow as pa
import pytest
import redis
from click.testing import CliRunner

from tickvault.cli import cli
from tickvault.dev.demo import check_continuity, check_counts, check_no_duplicates, cum_volume_breaks
from tickvault.dev.simulate import generate_day

DAY = "2026-11-20"


def _bare_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a machine with nothing configured, temp files under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(TMPDIR=str(tmp), **extra)
    return env


def _demo(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tickvault.cli", "demo", "--date", DAY, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _embedded_ports(text: str) -> list[int]:
    """The loopback ports of the embedded servers the demo announced."""
    return [int(p) for p in re.findall(r"embedded 127\.0\.0\.1:(\d+)", text)]


def _server_processes(ports: list[int]) -> set[int]:
    """Processes of the embedded servers on ``ports`` (PostgreSQL: -p PORT; Redis retitles itself HOST:PORT)."""
    pids = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        args = proc.info.get("cmdline") or []
        line = " ".join(args)
        for port in ports:
            if f"127.0.0.1:{port}" in line or ("-p" in args[:-1] and args[args.index("-p") + 1] == str(port)):
                pids.add(proc.info["pid"])
    return pids


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_on_the_configured_servers_cleans_up(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    env = _bare_env(tmp_path / "tmp", TICKVAULT_PG_URL=pg_url, TICKVAULT_REDIS_URL=redis_url, TICKVAULT_HOT_MODE="postgres")
    result = _demo(env, "--symbols", "4", "--ticks", "6000", "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["counts"]["generated"] == report["counts"]["hot"] == report["counts"]["cold"] == 6000
    assert report["counts"]["entries"] == 6060  # 1 % re-sent by default
    assert {c["name"] for c in report["checks"] if c["ok"]} >= {
        "generated == hot == cold", "generated == hot == cold (KRX)", "generated == hot == cold (NXT)",
        "no duplicate ticks (hot)", "no duplicate ticks (cold)",
        "cum_volume continuous per venue and symbol (hot)", "cum_volume continuous per venue and symbol (cold)",
        "verify: universe complete and continuous (KRX)", "verify: universe complete and continuous (NXT)",
    }
    assert report["counts"]["generated_KRX"] + report["counts"]["generated_NXT"] == 6000 and report["counts"]["generated_NXT"] > 0
    schema, stream = report["servers"]["schema"], report["servers"]["stream"]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select count(*) from pg_namespace where nspname = %s", (schema,)).fetchone()[0] == 0
    client = redis.Redis.from_url(redis_url)
    assert client.exists(stream, f"{stream}:dlq") == 0
    client.close()
    assert list((tmp_path / "tmp").iterdir()) == []  # the temp lake is gone


def test_demo_with_nothing_configured_uses_embedded_servers(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    result = _demo(_bare_env(tmp), "--symbols", "3", "--ticks", "4000")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "starting embedded servers" in result.stdout
    assert "PostgreSQL embedded 127.0.0.1:" in result.stdout
    assert "generated == hot == cold" in result.stdout and "4000 == 4000 == 4000" in result.stdout
    assert result.stdout.rstrip().endswith("all checks passed")
    assert "\r" not in result.stderr  # no progress display without a terminal
    ports = _embedded_ports(result.stdout)
    assert len(ports) == 2
    assert _server_processes(ports) == set() and not any(_listening(p) for p in ports)  # every server it started is gone
    assert list(tmp.iterdir()) == []


def test_demo_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    cmd = [sys.executable, "-m", "tickvault.cli", "demo", "--date", DAY, "--symbols", "10", "--ticks", "400000"]
    proc = subprocess.Popen(cmd, env=_bare_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 300
        while "simulating" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "simulating" in seen, seen
        ports = _embedded_ports(seen)
        assert len(ports) == 2 and all(_listening(p) for p in ports)  # the embedded servers are up
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted; everything the demo started was stopped" in err
    deadline = time.monotonic() + 10
    while _server_processes(ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _server_processes(ports) == set() and not any(_listening(p) for p in ports)
    assert list(tmp.iterdir()) == []


def test_demo_fails_when_a_store_lost_a_tick(pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks read the stores back; make the hot read-back lose one tick and the demo must fail."""
    import tickvault.services.export as export

    real_read_day = export.read_day

    def lossy_read_day(settings, source, day, symbols=None):
        table = real_read_day(settings, source, day, symbols)
        return pa.concat_tables([table.slice(0, 10), table.slice(11)]) if source == "hot" else table

    monkeypatch.setattr(export, "read_day", lossy_read_day)
    env = {"TICKVAULT_PG_URL": pg_url, "TICKVAULT_REDIS_URL": redis_url, "TICKVAULT_HOT_MODE": "postgres"}
    result = CliRunner().invoke(cli, ["demo", "--date", DAY, "--symbols", "2", "--ticks", "500"], env=env)
    assert result.exit_code == 1
    assert "FAIL  1 series broken" in result.stdout
    assert ("demo checks FAILED: generated == hot == cold (KRX), cum_volume continuous per venue and symbol (hot), "
            "stored values equal generated (hot)") in result.stderr


def test_checks_catch_a_lost_and_a_doubled_tick() -> None:
    day = generate_day(date(2026, 11, 20), symbols=3, ticks=300, seed=1)
    assert cum_volume_breaks(day) == {}
    assert check_continuity("x", day).ok and check_no_duplicates("x", day).ok
    lost = pa.concat_tables([day.slice(0, 100), day.slice(101)])
    assert sum(cum_volume_breaks(lost).values()) == 1
    assert not check_continuity("x", lost).ok
    doubled = pa.concat_tables([day, day.slice(7, 1)])
    assert not check_no_duplicates("x", doubled).ok
    assert sum(cum_volume_breaks(doubled).values()) == 1
    first_missing = day.filter(pa.compute.not_equal(day.column("cum_volume"), day.column("volume")))
    assert cum_volume_breaks(first_missing)  # a day must start at cum_volume == volume
    assert not check_counts(300, 300, 299).ok and check_counts(300, 300, 300).ok
    # each venue counts its own cum_volume: the two venues' series of one symbol are checked apart
    nxt = day.filter(pa.compute.equal(day.column("venue"), "NXT"))
    assert nxt.num_rows and set(cum_volume_breaks(pa.concat_tables([nxt.slice(0, 5), nxt.slice(6)]))) <= {f"NXT:{s}" for s in nxt.column("symbol").to_pylist()}
    relabelled = day.set_column(0, "venue", pa.array(["KRX"] * day.num_rows))
    assert cum_volume_breaks(relabelled)  # merging the venues breaks the proof
