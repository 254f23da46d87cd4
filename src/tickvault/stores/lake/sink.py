"""The archiver's view of the lake (archiver.Sink)."""

from __future__ import annotations

import pyarrow as pa

from .store import Lake


class LakeSink:
    """Writes each archiver batch and its checkpoint in one DuckLake transaction."""

    name = "cold"

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def prepare(self) -> None:
        self.lake.init()

    def write(self, batch: pa.Table, stream: str, group: str, last_id: str) -> int:
        return self.lake.write(batch, checkpoint=(stream, group, last_id))

    def checkpoint(self, stream: str, group: str) -> str | None:
        return self.lake.checkpoint(stream, group)

    def close(self) -> None:
        self.lake.close()
