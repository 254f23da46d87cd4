"""Access tokens cached on disk, readable by the owner only.

Brokers limit how often a token may be issued (KIS: about once a minute) and a token
lives for a day, so every process of an installation reuses one token per (broker,
base URL, app key). The file name holds a hash, never the key; the file itself is
created 0600 inside a 0700 directory and refused if anyone else can read it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

#: A token this close to expiry is treated as expired (a call must not race its death).
EXPIRY_MARGIN = timedelta(minutes=5)


def default_token_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tickvault" / "tokens"


@dataclass(frozen=True)
class CachedToken:
    value: str
    expires_at: datetime  # aware

    def fresh(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return now + EXPIRY_MARGIN < self.expires_at

    def __repr__(self) -> str:  # never show the token
        return f"CachedToken(value=**********, expires_at={self.expires_at.isoformat()})"


class TokenCache:
    """One JSON file per (broker, base URL, app key)."""

    def __init__(self, directory: Path, broker: str, base_url: str, appkey: str):
        digest = hashlib.sha256(f"{broker}\0{base_url}\0{appkey}".encode()).hexdigest()[:20]
        self.directory = Path(directory)
        self.path = self.directory / f"{broker}-{digest}.json"

    def load(self) -> CachedToken | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("token cache %s is readable by others; ignoring it and issuing a new token (chmod 600 it or delete it)", self.path)
            return None
        try:
            data = json.loads(self.path.read_text())
            token = CachedToken(str(data["token"]), datetime.fromisoformat(data["expires_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("token cache %s is unreadable; issuing a new token", self.path)
            return None
        return token if token.fresh() else None

    def save(self, token: CachedToken) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.chmod(self.directory, 0o700)
        except OSError:
            pass
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tok-")  # mkstemp creates 0600
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"token": token.value, "expires_at": token.expires_at.isoformat()}, handle)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
