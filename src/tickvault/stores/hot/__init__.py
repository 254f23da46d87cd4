"""The hot store: ticks, candles and metrics in PostgreSQL or TimescaleDB (docs/hot-store.md)."""

from .store import HotStore, HotStoreError

__all__ = ["HotStore", "HotStoreError"]
