"""One KST day of ticks from one store, as one plain Parquet file (`tickvault export`, the demo's checks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..core.calendar import trading_day_bounds
from ..core.config import Settings
from ..core.errors import StoreNotInitialized
from ..core.wire import NATURAL_KEY, TICK_SCHEMA
from ..stores.hot import HotStore
from ..stores.lake import Lake


def read_day(settings: Settings, source: str, day: date, symbols: Sequence[str] | None = None) -> pa.Table:
    """All ticks of one KST date from ``source`` ('hot' or 'cold'), sorted by the natural key,
    so exports of the two stores can be compared byte for byte."""
    start, end = trading_day_bounds(day)
    if source == "hot":
        store = HotStore(settings)
        try:
            table = store.read_ticks(start, end, symbols)
        finally:
            store.close()
    elif source == "cold":
        if not Lake(settings).exists():
            raise StoreNotInitialized(f"no lake at {settings.lake_dir}; set TICKVAULT_LAKE_DIR to the lake directory (or run `tickvault init`)")
        lake = Lake(settings)
        try:
            table = lake.read_ticks(start, end, symbols)
        finally:
            lake.close()
    else:
        raise ValueError(f"unknown source {source!r}; use hot or cold")
    return table.cast(TICK_SCHEMA).sort_by([(k, "ascending") for k in NATURAL_KEY])


def write_parquet(table: pa.Table, out: str | Path) -> None:
    """Write atomically: a reader never sees half a file, a failed export leaves no file."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, str(tmp), compression="zstd")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
