"""Broker errors. Messages carry codes and operator hints, never keys or tokens."""

from __future__ import annotations

from ...core import errors


class BrokerError(errors.BrokerError):
    """A broker call failed in a way the caller should report (bad request, unknown error code)."""

    def __init__(self, broker: str, message: str, code: str | None = None, status: int | None = None):
        self.broker = broker
        self.code = code
        self.status = status
        where = f" (HTTP {status})" if status is not None else ""
        tag = f"[{code}] " if code else ""
        super().__init__(f"{broker}: {tag}{message}{where}")


class BrokerAuthError(BrokerError):
    """Credentials missing or refused: fix the app key / secret, then re-run."""


class BrokerRateLimited(BrokerError):
    """The broker kept refusing for rate after all retries."""
