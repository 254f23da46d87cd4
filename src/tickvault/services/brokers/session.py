"""What both brokers' REST clients share: one HTTP client, call counters, and a token held
in memory and cached on disk so every process of the installation reuses it (brokers limit
how often a token may be issued)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Self

import httpx

from ...core.config import Settings
from .tokencache import CachedToken, TokenCache, default_token_dir


@dataclass
class CallStats:
    calls: int = 0  # data calls sent (token calls excluded)
    token_issues: int = 0
    rate_retries: int = 0
    token_reissues: int = 0
    by_tr: dict[str, int] = field(default_factory=dict)


class BrokerSession:
    """Base of the broker clients; a subclass sets ``broker`` and implements ``_issue_token``."""

    broker: str

    def _open_session(self, settings: Settings, base_url: str, appkey: str, transport: httpx.BaseTransport | None) -> None:
        self._cache = TokenCache(settings.broker_token_dir or default_token_dir(), self.broker, base_url, appkey)
        self._token: CachedToken | None = None
        self._lock = threading.RLock()
        self.stats = CallStats()
        self._http = httpx.Client(base_url=base_url, timeout=settings.broker_timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _issue_token(self) -> CachedToken:
        raise NotImplementedError

    def _current_token(self) -> str:
        """A valid access token: from memory, else the disk cache, else freshly issued."""
        with self._lock:
            if self._token is not None and self._token.fresh():
                return self._token.value
            cached = self._cache.load()
            if cached is not None:
                self._token = cached
                return cached.value
            self._token = self._issue_token()
            self._cache.save(self._token)
            return self._token.value

    def invalidate_token(self) -> None:
        """Forget the token everywhere (the broker said it expired or is invalid)."""
        with self._lock:
            self._token = None
            self._cache.clear()
