"""Least privilege: the reader cannot write, the writer cannot run DDL (drop, truncate, create).

Roles are cluster-wide, so each test uses its own role names and drops them afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from factories import one_symbol_ticks
from tickvault.core.config import Settings
from tickvault.core.errors import StoreError
from tickvault.core.wire import KST, Tick, ticks_to_table
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.roles import create_roles


def _as(url: str, role: str) -> str:
    params = conninfo_to_dict(url)
    params.pop("password", None)
    params["user"] = role
    return make_conninfo(**params)


def _drop_roles(admin_url: str, *roles: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role in roles:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
                conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))


def _ticks(n: int = 20) -> list[Tick]:
    # today (KST) 09:00: init created this day's partition in PostgreSQL mode
    start = datetime.now(KST).replace(hour=9, minute=0, second=0, microsecond=0)
    return one_symbol_ticks(n, start, price=Decimal("70100"), volume=10, received_at=datetime.now(UTC))


@pytest.fixture
def roled(settings: Settings, test_id: str) -> Iterator[Settings]:
    s = settings.model_copy(update={"pg_writer_role": f"tvtest_{test_id}_w", "pg_reader_role": f"tvtest_{test_id}_r"})
    store = HotStore(s)
    store.init()
    store.close()
    yield s
    _drop_roles(s.pg_dsn, s.pg_writer_role, s.pg_reader_role)


def _check_privileges(s: Settings, candles_kind: str = "TABLE") -> None:
    writer_url, reader_url = _as(s.pg_dsn, s.pg_writer_role), _as(s.pg_dsn, s.pg_reader_role)
    schema = s.pg_schema

    # writer: archiver-style writes through the hot store work (ticks, candles, checkpoint) ...
    writer_store = HotStore(s.model_copy(update={"pg_url": writer_url}))
    assert writer_store.upsert(ticks_to_table(_ticks())) == 20
    assert writer_store.upsert(ticks_to_table(_ticks())) == 0
    with psycopg.connect(writer_url, autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{schema}".metrics (ts, name, labels, value) VALUES (now(), %s, %s, 1)', ("t", "{}"))
        # ... but no DDL
        for statement in (
            f'DELETE FROM "{schema}".ticks',  # no writer path changes or removes a stored tick
            f'UPDATE "{schema}".ticks SET volume = 0',
            f'UPDATE "{schema}".hot_meta SET value = \'x\'',  # mode and schema version are the owner's
            f'DELETE FROM "{schema}".hot_meta',
            f'INSERT INTO "{schema}".hot_meta (key, value) VALUES (\'mode\', \'x\')',
            f'DELETE FROM "{schema}".metrics',  # retention is `maintain`, run as the owner
            f'DROP TABLE "{schema}".ticks',
            f'DROP {candles_kind} "{schema}".candles_1m',
            f'DROP TABLE "{schema}".metrics',
            f'TRUNCATE "{schema}".ticks',
            f'ALTER TABLE "{schema}".ticks ADD COLUMN x int',
            f'CREATE TABLE "{schema}".intruder (x int)',
            f'DROP SCHEMA "{schema}" CASCADE',
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)

    # reader: sees the data with unqualified names (Grafana's search_path) ...
    with psycopg.connect(reader_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM ticks").fetchone()[0] == 20
        assert conn.execute("SELECT sum(volume) FROM candles_1m WHERE symbol = '005930'").fetchone()[0] == 200
        assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] >= 1
        # ... and cannot write: refused by the read-only default, and by privileges when that is switched off
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO metrics (ts, name, labels, value) VALUES (now(), 'x', '{}', 1)")
        conn.execute("SET default_transaction_read_only = off")
        for statement in (
            "INSERT INTO metrics (ts, name, labels, value) VALUES (now(), 'x', '{}', 1)",
            "DELETE FROM ticks",
            "UPDATE ticks SET volume = 0",
            "DROP TABLE ticks",
            "CREATE TABLE intruder (x int)",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(s.pg_dsn) as conn:
        assert conn.execute(f'SELECT count(*) FROM "{schema}".ticks').fetchone()[0] == 20


def test_reader_cannot_write_and_writer_cannot_drop(roled: Settings) -> None:
    result = create_roles(HotStore(roled))
    assert (result.writer, result.reader) == (roled.pg_writer_role, roled.pg_reader_role)
    _check_privileges(roled)


def test_roles_are_idempotent_and_cover_tables_created_later(roled: Settings) -> None:
    s = roled.model_copy(update={"pg_writer_password": SecretStr("w-secret"), "pg_reader_password": SecretStr("r-secret")})
    create_roles(HotStore(s))
    create_roles(HotStore(s))  # again: no error, same grants
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{s.pg_schema}".later (x int)')  # e.g. a table added by an upgrade
        conn.execute(f'INSERT INTO "{s.pg_schema}".later VALUES (1)')
        stored = dict(conn.execute(
            "SELECT rolname, rolpassword IS NOT NULL FROM pg_authid WHERE rolname IN (%s, %s)", (s.pg_writer_role, s.pg_reader_role)
        ).fetchall())
    assert stored == {s.pg_writer_role: True, s.pg_reader_role: True}
    with psycopg.connect(_as(s.pg_dsn, s.pg_reader_role)) as conn:
        assert conn.execute("SELECT x FROM later").fetchone()[0] == 1
    with psycopg.connect(_as(s.pg_dsn, s.pg_writer_role), autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{s.pg_schema}".later VALUES (2)')
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f'DROP TABLE "{s.pg_schema}".later')


def test_bad_role_names_are_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="TICKVAULT_PG_WRITER_ROLE"):
        create_roles(HotStore(settings.model_copy(update={"pg_writer_role": 'evil"; DROP'})))
    with pytest.raises(ValueError, match="must differ"):
        create_roles(HotStore(settings.model_copy(update={"pg_writer_role": "same_role", "pg_reader_role": "same_role"})))


@pytest.mark.timescaledb
def test_roles_in_timescaledb_mode(tsdb_settings: Settings, test_id: str) -> None:
    s = tsdb_settings.model_copy(update={"pg_writer_role": f"tvtest_{test_id}_w", "pg_reader_role": f"tvtest_{test_id}_r"})
    store = HotStore(s)
    try:
        store.init()
        assert store.mode == "timescaledb"
        create_roles(HotStore(s))
        _check_privileges(s, "MATERIALIZED VIEW")  # writer inserts create chunks by themselves; the reader reads candle views
    finally:
        store.close()
        _drop_roles(s.pg_dsn, s.pg_writer_role, s.pg_reader_role)


def test_init_roles_through_the_cli(roled: Settings) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env.update({
        "TICKVAULT_PG_URL": roled.pg_dsn, "TICKVAULT_REDIS_URL": roled.redis_dsn, "TICKVAULT_PG_SCHEMA": roled.pg_schema,
        "TICKVAULT_HOT_MODE": "postgres", "TICKVAULT_PG_WRITER_ROLE": roled.pg_writer_role,
        "TICKVAULT_PG_READER_ROLE": roled.pg_reader_role,
    })
    result = subprocess.run([sys.executable, "-c", "from tickvault.cli import main; main()", "init", "--no-cold", "--roles"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"writer {roled.pg_writer_role}, reader {roled.pg_reader_role}" in result.stdout
    with psycopg.connect(_as(roled.pg_dsn, roled.pg_reader_role)) as conn:
        assert conn.execute("SELECT count(*) FROM ticks").fetchone()[0] == 0


def test_archiver_runs_as_the_writer_role(roled: Settings, rclient) -> None:
    """`tickvault run` needs no DDL rights: the hot archiver and the metrics sampler work as the writer."""
    from tickvault.core.stream import Publisher
    from tickvault.ops.metrics import MetricsSampler, PipelineMetrics
    from tickvault.ops.run import ArchiverRunnable

    create_roles(HotStore(roled))
    writer = roled.model_copy(update={"pg_url": _as(roled.pg_dsn, roled.pg_writer_role)})
    Publisher(rclient, writer.stream).publish(_ticks(50))
    metrics = PipelineMetrics(writer)
    runnable = ArchiverRunnable(writer, "hot", metrics, consumer="writer-test")
    runnable.archiver.run_until_idle()
    runnable.close()
    sampler = MetricsSampler(metrics, writer, redis_client=None)
    assert sampler.sample_once() > 0
    sampler.writer.close()
    with psycopg.connect(roled.pg_dsn) as conn:
        assert conn.execute(f'SELECT count(*) FROM "{roled.pg_schema}".ticks').fetchone()[0] == 50
        assert conn.execute(f'SELECT count(*) FROM "{roled.pg_schema}".metrics').fetchone()[0] > 0
    assert metrics.value("tickvault_ingest_added_total", group="hot") == 50


def test_writer_cannot_start_on_a_missing_schema(settings: Settings, test_id: str) -> None:
    other = settings.model_copy(update={"pg_schema": f"t_{test_id}_absent", "pg_writer_role": f"tvtest_{test_id}_w",
                                        "pg_reader_role": f"tvtest_{test_id}_r"})
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{other.pg_schema}"')
    try:
        create_roles(HotStore(other))
        writer = other.model_copy(update={"pg_url": _as(other.pg_dsn, other.pg_writer_role)})
        with pytest.raises(Exception, match="run `tickvault init` as the schema owner"):
            HotStore(writer).init()
    finally:
        _drop_roles(settings.pg_dsn, other.pg_writer_role, other.pg_reader_role)
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other.pg_schema}" CASCADE')


def test_reconcile_and_recovery_reports_need_no_ddl_as_the_writer(roled: Settings, tmp_path) -> None:
    """`tickvault init` creates the report tables, so the writer's reconcile stores its integrity rows."""
    from click.testing import CliRunner

    from tickvault.cli import cli
    from tickvault.core.calendar import trading_date
    from tickvault.core.wire import ticks_to_table
    from tickvault.services.sync.reconcile import reconcile
    from tickvault.stores.lake import Lake

    env = {
        "TICKVAULT_PG_URL": roled.pg_dsn, "TICKVAULT_REDIS_URL": roled.redis_dsn, "TICKVAULT_PG_SCHEMA": roled.pg_schema,
        "TICKVAULT_HOT_MODE": "postgres", "TICKVAULT_LAKE_DIR": str(roled.lake_dir),
        "TICKVAULT_PG_WRITER_ROLE": roled.pg_writer_role, "TICKVAULT_PG_READER_ROLE": roled.pg_reader_role,
    }
    result = CliRunner().invoke(cli, ["init", "--roles"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    writer = roled.model_copy(update={"pg_url": _as(roled.pg_dsn, roled.pg_writer_role)})
    ticks = _ticks(30)
    Lake(writer).upsert(ticks_to_table(ticks))  # hot lacks them all: reconcile repairs hot as the writer
    report = reconcile(writer, trading_date(ticks[0].ts), repair=True)
    assert report.added_to_hot == 30 and report.consistent
    with psycopg.connect(roled.pg_dsn) as conn:
        rows = conn.execute(f'SELECT symbol, ticks FROM "{roled.pg_schema}".integrity_report').fetchall()
    assert rows and sum(n for _, n in rows) == 30


def test_writer_role_places_ticks_of_any_past_day_without_stalling(roled: Settings, rclient) -> None:
    """Issue 13.6: ticks of past KST days that have no partition (before `init`, and one older
    than the retention) reach the writer's hot archiver. Each day's partition is created through
    the owner's partition function, nothing waits for `maintain`, and the group drains."""
    import threading
    from datetime import timedelta

    from factories import day_ticks
    from tickvault.core.stream import Publisher
    from tickvault.services.archiver import build_archiver

    create_roles(HotStore(roled))
    writer = roled.model_copy(update={"pg_url": _as(roled.pg_dsn, roled.pg_writer_role)})
    today = datetime.now(KST).date()
    days = [today - timedelta(days=5), today - timedelta(days=roled.tick_retention_days + 10), today]
    Publisher(rclient, writer.stream).publish([t for day in days for t in day_ticks(day, ["005930"], 10, seed=day.toordinal())])
    archiver = build_archiver(writer, "hot", consumer="writer-old-days")
    drained = threading.Thread(target=archiver.run_until_idle)
    drained.start()
    drained.join(timeout=30)
    stalled = drained.is_alive()
    archiver.stop()
    drained.join()
    archiver.store.close()
    assert not stalled, "the hot group stalled on a tick it could not place"
    assert rclient.xpending(writer.stream, "hot")["pending"] == 0
    with psycopg.connect(roled.pg_dsn) as conn:
        per_day = dict(conn.execute(
            f"SELECT (ts AT TIME ZONE 'Asia/Seoul')::date, count(*) FROM \"{roled.pg_schema}\".ticks GROUP BY 1").fetchall())
        owner = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname LIKE 'ticks_p%%' "
            "AND relnamespace = %s::regnamespace", (roled.pg_schema,)).fetchall()
    assert per_day == dict.fromkeys(days, 10)
    assert owner == [(conninfo_to_dict(roled.pg_dsn).get("user", "postgres"),)]  # partitions stay the owner's
    # the function adds a day's partition and nothing else; the reader may not call it at all
    call = f'SELECT "{roled.pg_schema}".tickvault_create_partition(%s, %s, %s)'
    with psycopg.connect(_as(roled.pg_dsn, roled.pg_writer_role), autocommit=True) as conn:
        with pytest.raises(errors.RaiseException, match="is not the day"):
            conn.execute(call, (today, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)))
    with psycopg.connect(_as(roled.pg_dsn, roled.pg_reader_role), autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(call, (today, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)))
    # retention is the owner's: the writer's maintain makes partitions ahead and says so in one line
    with pytest.raises(StoreError, match="run `tickvault maintain` as the schema owner"):
        HotStore(writer).maintain()
    # the owner's maintain drops the day older than the retention again; the lake keeps it
    report = HotStore(roled).maintain()
    assert f"ticks_p{days[1]:%Y%m%d}" in report["dropped_partitions"]


def test_role_passwords_are_hashed_on_the_client(roled: Settings) -> None:
    """Issue 13.14: ALTER ROLE … PASSWORD carries a SCRAM verifier computed by libpq, never the
    plaintext. The owner's session asks the server for md5: a plaintext password would be
    stored as md5, the client's verifier stays SCRAM-SHA-256."""
    params = conninfo_to_dict(roled.pg_dsn)
    params["options"] = "-c password_encryption=md5"
    md5_session = roled.model_copy(update={"pg_url": make_conninfo(**params), "pg_writer_password": SecretStr("w-secret-1")})
    store = HotStore(md5_session)
    create_roles(store)
    store.close()
    with psycopg.connect(roled.pg_dsn) as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (roled.pg_writer_role,)).fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$"), stored[:12]
    assert "w-secret-1" not in stored
