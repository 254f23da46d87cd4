"""Embedded PostgreSQL / Redis: start, connect, stop, restart with data, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tickvault.dev.embedded import EmbeddedPostgres, EmbeddedRedis


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_postgres_start_connect_restart_keeps_data(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    try:
        url = server.start()
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("show server_version").fetchone()[0].startswith("18.")
            conn.execute("create table kept (n int)")
            conn.execute("insert into kept values (7), (8)")
        pid = server.proc.pid
        server.stop()
        assert not _alive(pid)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        assert server.start() == url  # same port after a restart
        with psycopg.connect(url) as conn:
            assert conn.execute("select sum(n) from kept").fetchone()[0] == 15
        uid_line = next(line for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines() if line.startswith("Uid:"))
        assert int(uid_line.split()[1]) != 0  # PostgreSQL never runs as root
        assert os.stat(server.data_dir).st_uid == int(uid_line.split()[1])
        data_dir = server.data_dir
    finally:
        server.close()
    if os.geteuid() == 0:  # the private data dir goes with close()
        assert not data_dir.exists()


def test_postgres_as_root_leaves_parent_dirs_alone(tmp_path: Path) -> None:
    private_parent = tmp_path / "private"
    private_parent.mkdir(mode=0o700)
    before = private_parent.stat().st_mode
    with EmbeddedPostgres(private_parent / "pg") as server:
        with psycopg.connect(server.url) as conn:
            assert conn.execute("select 1").fetchone()[0] == 1
    assert private_parent.stat().st_mode == before


@pytest.mark.skipif(os.geteuid() != 0, reason="the private copy of the binaries is only made when running as root")
def test_postgres_copies_binaries_the_user_cannot_reach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EmbeddedPostgres, "_user_can_run", lambda self, binary: False)
    server = EmbeddedPostgres(tmp_path / "pg")
    try:
        url = server.start()
        assert "tickvault-pgbin-" in str(server._bin_dir)
        with psycopg.connect(url) as conn:
            assert conn.execute("select 1").fetchone()[0] == 1
        copy = server._private_dirs[-1]
    finally:
        server.close()
    assert not copy.exists()


def test_redis_streams_and_stop(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.xadd("s", {"a": "1"})
        client.xgroup_create("s", "g", id="0")
        assert client.xreadgroup("g", "c", {"s": ">"}, count=10)[0][1][0][1] == {"a": "1"}
        assert client.xautoclaim("s", "g", "c2", 0)[1]  # Redis >= 6.2
        client.close()
        pid = server.proc.pid
    assert not _alive(pid)


def test_redis_appendonly_survives_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    try:
        url = server.start()
        client = redis.Redis.from_url(url)
        client.xadd("s", {"a": "1"})
        client.close()
        server.stop()
        assert server.start() == url
        client = redis.Redis.from_url(url)
        assert client.xlen("s") == 1
        client.close()
    finally:
        server.close()


CHILD = """
import sys, time
from tickvault.dev.embedded import EmbeddedPostgres, EmbeddedRedis
pg = EmbeddedPostgres(); pg.start()
rd = EmbeddedRedis(); rd.start()
print(pg.proc.pid, rd.proc.pid, pg.data_dir.parent, rd.base_dir, flush=True)
time.sleep(120)
"""


def test_no_orphans_when_the_parent_is_killed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        pids, dirs = [int(p) for p in line[:2]], [Path(d) for d in line[2:]]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
    assert all(d.exists() for d in dirs)
    EmbeddedRedis().close()  # the next embedded server sweeps temp dirs left by dead owners
    assert not any(d.exists() for d in dirs)
