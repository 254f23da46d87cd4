"""Hot reads from a streaming replica (TICKVAULT_PG_READ_URL): a PostgreSQL cluster the test
starts itself, a real replica made from it with pg_basebackup, and the same answers from both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from factories import DAY
from tickvault import Vault
from tickvault.core.calendar import trading_day_bounds
from tickvault.core.config import Settings
from tickvault.core.errors import StoreError
from tickvault.dev.embedded import EmbeddedPostgres
from tickvault.dev.simulate import generate_day
from tickvault.services.sync.verify import verify
from tickvault.stores.hot import HotStore


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, EmbeddedPostgres]]:
    from scaleout import ReplicaPostgres, running

    primary = EmbeddedPostgres(tmp_path / "primary")
    replica = ReplicaPostgres(primary, tmp_path / "replica")
    with running("a PostgreSQL primary with a streaming replica", primary, replica):
        yield primary, replica


def wait_replayed(primary_url: str, replica_url: str, timeout_s: float = 30.0) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    with psycopg.connect(primary_url) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError(f"replica did not replay up to {target} in {timeout_s}s")


def test_reads_from_the_replica_equal_the_primary(primary_and_replica, settings: Settings) -> None:
    primary, replica = primary_and_replica
    s = settings.model_copy(update={"pg_url": primary.url, "pg_read_url": replica.url})
    truth = generate_day(DAY, symbols=4, ticks=4000, seed=5)
    with HotStore(s) as store:
        store.init()
        store.upsert(truth)
        start, end = trading_day_bounds(DAY)
        on_primary = store.read_ticks(start, end)
        candles_on_primary = store.candles("5m", start, end)
    wait_replayed(primary.url, replica.url)
    with Vault(s) as vault:
        assert vault.ticks(None, DAY, DAY, source="hot").equals(on_primary)
        assert vault.candles(None, "5m", DAY, DAY, source="hot", fill=False).equals(candles_on_primary)
    with HotStore(s, replica=True) as reader, pytest.raises(StoreError):
        reader.upsert(truth.slice(0, 10))  # a standby refuses writes: nothing writing is given one
    primary.stop()  # what follows can only have come from the replica
    with Vault(s) as vault:
        assert vault.ticks(None, DAY, DAY, source="hot").equals(on_primary)
    report = verify(s, DAY, source="hot")
    assert report.consistent, report.reasons()
    assert report.stores["hot"].ticks == truth.num_rows


def test_without_a_read_url_reads_go_to_the_primary(settings: Settings) -> None:
    assert HotStore(settings, replica=True).dsn == settings.pg_dsn
    assert settings.pg_read_dsn == settings.pg_dsn
