"""tickvault: zero-loss archive of Korean stock-market ticks (Redis stream -> hot PostgreSQL/TimescaleDB + cold DuckLake).

The public API::

    import tickvault

    with tickvault.Vault() as vault:           # settings from TICKVAULT_* / TOML, or Vault(settings)
        bars = vault.candles("005930", "15m", "2026-11-02", "2026-11-06", output="pandas")
        day = vault.ticks("005930", "2026-11-27", output="polars")

Everything tickvault raises on purpose is a ``tickvault.TickvaultError``. The names below load on
first use, so ``import tickvault`` (and every ``tickvault`` command) stays fast.
"""

from __future__ import annotations

import importlib

from .core.errors import (
    BrokerError,
    ConfigError,
    InvalidTick,
    LakeLocked,
    PartialAnswer,
    QueryError,
    StorageFull,
    StoreError,
    StoreNotInitialized,
    StoreUnavailable,
    StreamError,
    TickvaultError,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (10 ms of every `tickvault` command)
if TYPE_CHECKING:
    from typing import Any

    from .core.bars import CANDLE_SCHEMA
    from .core.config import Settings, load_settings
    from .core.timeframe import Timeframe
    from .core.wire import TICK_SCHEMA
    from .services.api import Vault, candles, ticks

__version__ = "0.1.0"

__all__ = [
    "CANDLE_SCHEMA",
    "TICK_SCHEMA",
    "BrokerError",
    "ConfigError",
    "InvalidTick",
    "LakeLocked",
    "PartialAnswer",
    "QueryError",
    "Settings",
    "StorageFull",
    "StoreError",
    "StoreNotInitialized",
    "StoreUnavailable",
    "StreamError",
    "TickvaultError",
    "Timeframe",
    "Vault",
    "__version__",
    "candles",
    "load_settings",
    "ticks",
]

#: public name -> module that defines it, imported when the name is first used
_LAZY = {
    "Vault": ".services.api",
    "ticks": ".services.api",
    "candles": ".services.api",
    "Settings": ".core.config",
    "load_settings": ".core.config",
    "Timeframe": ".core.timeframe",
    "TICK_SCHEMA": ".core.wire",
    "CANDLE_SCHEMA": ".core.bars",
}

if not TYPE_CHECKING:  # type checkers see the imports above; an unknown name stays an error for them

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'tickvault' has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
