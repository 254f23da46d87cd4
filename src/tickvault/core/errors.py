"""One exception family for everything tickvault raises on purpose.

Every message says what to do next (the CLI prints it as one line). Store boundaries map
driver errors (psycopg, duckdb, redis) into this family, so a Python user catches
``tickvault.TickvaultError`` — or a narrower class — and never a driver's own type.
"""

from __future__ import annotations


class TickvaultError(Exception):
    """Root of every error tickvault raises on purpose."""


class ConfigError(TickvaultError, ValueError):
    """A setting is missing, malformed or inconsistent; the message names it."""


class QueryError(TickvaultError, ValueError):
    """A question tickvault cannot answer as asked; the message says what to change."""


class InvalidTick(TickvaultError, ValueError):
    """A wire entry or row that cannot become a tick; the message is the dead-letter reason."""


class StoreError(TickvaultError):
    """A store refused or failed an operation."""


class StoreUnavailable(StoreError):
    """A store cannot be reached right now (server down, network, lock held); retry later."""


class StoreNotInitialized(StoreError):
    """The store's schema or lake does not exist yet: run `tickvault init`."""


class LakeLocked(StoreUnavailable):
    """The lake catalog stayed locked longer than the retry budget."""


class StorageFull(StoreError):
    """The lake's storage cannot take more data (disk full, quota, file-size limit)."""


class StreamError(TickvaultError):
    """The Redis stream cannot be used as configured."""


class PartialAnswer(UserWarning):
    """A warning: the answer lacks part of the range (e.g. the hot store was down and the lake does not
    hold its dates); the message names the missing dates. The CLI exits non-zero on it."""


class BrokerError(TickvaultError):
    """A broker API call failed; the message carries the broker's code and what to do."""
