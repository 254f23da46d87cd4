"""What both stores can do, so sync, recovery and queries treat hot and cold alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

import pyarrow as pa


class TickStore(Protocol):
    """Implemented by hot.HotStore (PostgreSQL/TimescaleDB) and lake.Lake (DuckLake)."""

    name: str  # "hot" or "cold"

    def init(self) -> None:
        """Create/upgrade schema; idempotent."""

    def upsert(self, ticks: pa.Table) -> int:
        """Insert ticks (TICK_SCHEMA) not yet stored, by natural key. Returns rows added."""

    def read_ticks(self, start: datetime, end: datetime, symbols: Sequence[str] | None = None) -> pa.Table:
        """Ticks with start <= ts < end as TICK_SCHEMA, ordered by symbol, cum_volume."""

    def count_ticks(self, day: date) -> int:
        """Ticks of one KST date."""

    def close(self) -> None: ...
