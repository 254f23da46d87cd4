"""HotSink: the archiver's view of the hot store (archiver.Sink protocol).

Holds one connection for its lifetime; any failure drops it so the archiver's retry
starts from a fresh connection (a restarted server, a failover). Partitions ahead and
retention run at prepare and then hourly, outside the data transactions.
"""

from __future__ import annotations

import logging
import time

import psycopg
import pyarrow as pa

from .store import HotStore, HotStoreError

log = logging.getLogger(__name__)

MAINTAIN_EVERY_S = 3600.0


class HotSink:
    name = "hot"

    def __init__(self, store: HotStore) -> None:
        self.store = store
        self._conn: psycopg.Connection | None = None
        self._last_maintain = 0.0

    def prepare(self) -> None:
        """Create/upgrade the schema; a writer role without DDL rights uses the owner's schema as is."""
        try:
            self.store.init()
        except psycopg.errors.InsufficientPrivilege as exc:
            if not self.store.initialized():
                raise HotStoreError(
                    f"schema {self.store.schema} does not exist and this role may not create it "
                    f"({str(exc).strip().splitlines()[0]}); run `tickvault init` as the schema owner first"
                ) from None
            log.info("hot: this role has no DDL rights; using schema %s as `tickvault init` left it", self.store.schema)
            return
        self._maintain()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            self._conn = self.store.connect(autocommit=True)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone anyway
                pass
        self._conn = None

    def _maintain(self) -> None:
        try:
            self.store.maintain()
        except Exception as exc:  # noqa: BLE001 - housekeeping must never hold ingest back
            log.error("hot maintenance failed (%s); ingest continues, will retry in an hour", exc)
        self._last_maintain = time.monotonic()

    def write(self, batch: pa.Table, stream: str, group: str, last_id: str) -> int:
        if time.monotonic() - self._last_maintain > MAINTAIN_EVERY_S:
            self._maintain()
        try:
            return self.store.write(self._connection(), batch, (stream, group, last_id))
        except Exception:
            self._drop()
            raise

    def checkpoint(self, stream: str, group: str) -> str | None:
        return self.store.checkpoint(stream, group)

    def close(self) -> None:
        self._drop()
        self.store.close()
