"""Operator mistakes and least-privilege operation, with archiver processes (issue 13.16).

- rebuild after hot retention: the cold archiver is down while hot's retention drops an old
  day; the operator runs the command the stream-ceiling alarm recommends (`tickvault rebuild
  cold`). The copy from hot cannot carry the dropped day; rebuild replays it from the stream.
- the writer role with old days: both archivers run as the least-privilege writer role while
  ticks of past days without a partition arrive (older than `init`, older than the retention).
  No group stalls; each day's partition comes from the owner's partition function.

Each scenario ends with the truth check (0 lost, 0 duplicated, hot == cold) for DAY, the same
counts for the other days in the lake, and a `verify` that must fail where the stores disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import redis
from click.testing import CliRunner
from faultkit import ArchiverProcess, RetryingPublisher, assert_truth, distinct_count, record, scale, truth_check, wait_drained
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from factories import DAY
from helpers import sort_key, subprocess_env
from tickvault.cli import cli
from tickvault.core.calendar import previous_trading_day
from tickvault.core.config import Settings
from tickvault.core.wire import KST, NATURAL_KEY, WireEncoder
from tickvault.dev.simulate import generate_day, wire_order
from tickvault.stores.hot import HotStore
from tickvault.stores.hot.roles import create_roles


def run(s: Settings, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={**subprocess_env(s), **env})
    return result.exit_code, result.output


def lake_day(s: Settings, day, tmp_path: Path) -> pa.Table:
    code, output = run(s, "export", "--source", "cold", "--date", day.isoformat(), "--out", str(tmp_path / f"{day}.parquet"))
    assert code == 0, output
    return pq.read_table(tmp_path / f"{day}.parquet")


def assert_lake_holds(s: Settings, truth: pa.Table, day, tmp_path: Path) -> dict[str, int]:
    """The lake holds exactly ``truth`` for ``day``: counts, then the equality."""
    got = sort_key(lake_day(s, day, tmp_path))
    keys = list(NATURAL_KEY)
    have = got.select(keys).group_by(keys).aggregate([])
    want = sort_key(truth).select(keys).group_by(keys).aggregate([])
    counts = {"lost": want.join(have, keys=keys, join_type="left anti").num_rows,
              "duplicated": got.num_rows - have.num_rows,
              "unexpected": have.join(want, keys=keys, join_type="left anti").num_rows}
    assert counts == {"lost": 0, "duplicated": 0, "unexpected": 0}, (day, counts)
    assert got.equals(sort_key(truth)), day
    return counts


def publish(s: Settings, *days: pa.Table) -> int:
    publisher = RetryingPublisher(s.redis_dsn, s.stream)
    for table in days:
        encoder = WireEncoder(table)
        publisher.send([encoder.fields(int(i)) for i in wire_order(table.num_rows, dup_rate=0.01, shuffle_window=50, seed=7)])
    return publisher.stats.entries


def test_rebuild_cold_after_hot_retention_loses_nothing(settings: Settings, rclient: redis.Redis, tmp_path: Path) -> None:
    old = previous_trading_day(DAY - timedelta(days=4))
    short_retention = str((datetime.now(KST).date() - DAY).days + 2)  # DAY stays held in full, `old` expires
    full_day = generate_day(DAY, symbols=5, ticks=scale(6_000, 60_000), seed=81)
    truth, later = full_day.slice(0, full_day.num_rows * 2 // 3), full_day.slice(full_day.num_rows * 2 // 3)  # the day goes on
    old_truth = generate_day(old, symbols=5, ticks=scale(2_000, 20_000), seed=82)
    hot = ArchiverProcess(settings, "hot", tmp_path / "hot.log")
    cold = ArchiverProcess(settings, "cold", tmp_path / "cold.log")
    cold.start()
    cold.wait_started()
    assert cold.stop() == 0  # the cold archiver made its group and the lake, then went down
    hot.start()
    hot.wait_started()
    entries = publish(settings, old_truth, truth)
    wait_drained(rclient, settings, ("hot",))
    # hot retention drops the old day while the lake is still behind
    code, output = run(settings, "maintain", "--json", TICKVAULT_TICK_RETENTION_DAYS=short_retention)
    assert code == 0 and f"ticks_p{old:%Y%m%d}" in output, output
    code, output = run(settings, "trim")
    assert code == 0 and "trimmed 0 " in output, output  # the cold group keeps every entry

    code, output = run(settings, "rebuild", "cold", "--from", old.isoformat(), "--wait", "30", "--json",
                       TICKVAULT_TICK_RETENTION_DAYS=short_retention)
    assert code == 0, output
    cold.start()
    cold.wait_started()
    entries += publish(settings, later)
    wait_drained(rclient, settings, ("hot", "cold"))
    assert [hot.stop(), cold.stop()] == [0, 0]

    report = truth_check(settings, full_day, tmp_path)
    old_counts = assert_lake_holds(settings, old_truth, old, tmp_path)
    # verify tells the truth: DAY agrees; the old day is in the lake only, and verify says so
    code, output = run(settings, "verify", "--date", DAY.isoformat())
    assert code == 0, output
    code, output = run(settings, "verify", "--date", old.isoformat(), "--source", "cold")
    assert code == 0, output
    code, output = run(settings, "verify", "--date", old.isoformat())
    assert code != 0, output
    record("rebuild cold after hot retention dropped a day", report, entries, 1, "operator:rebuild",
           old_day_ticks=distinct_count(old_truth), old_day_lost=old_counts["lost"], old_day_duplicated=old_counts["duplicated"])
    assert_truth(report)


def test_writer_role_with_old_days_never_stalls(settings: Settings, rclient: redis.Redis, tmp_path: Path, test_id: str) -> None:
    roles = settings.model_copy(update={"pg_writer_role": f"tvtest_{test_id}_w", "pg_reader_role": f"tvtest_{test_id}_r"})
    owner = HotStore(roles)
    owner.init()
    try:
        create_roles(owner)
        params = conninfo_to_dict(roles.pg_dsn)
        params.pop("password", None)
        writer = roles.model_copy(update={"pg_url": make_conninfo(**dict(params, user=roles.pg_writer_role))})
        today = datetime.now(KST).date()
        before_init = previous_trading_day(DAY - timedelta(days=2))  # inside the retention, no partition
        expired = previous_trading_day(today - timedelta(days=writer.tick_retention_days + 5))  # older than the retention
        truth = generate_day(DAY, symbols=5, ticks=scale(4_000, 40_000), seed=91)
        old = {day: generate_day(day, symbols=3, ticks=scale(1_000, 10_000), seed=92 + n) for n, day in enumerate((before_init, expired))}
        archivers = [ArchiverProcess(writer, g, tmp_path / f"{g}.log") for g in ("hot", "cold")]
        for archiver in archivers:
            archiver.start()
        for archiver in archivers:
            archiver.wait_started()
        entries = publish(writer, *old.values(), truth)
        wait_drained(rclient, writer, ("hot", "cold"), timeout=120)  # a stalled group fails here
        assert [a.stop() for a in archivers] == [0, 0]
        for archiver in archivers:  # no batch was ever refused (the writer's hourly retention job is, by design)
            assert "ticks failed (attempt" not in archiver.new_output(), archiver.new_output()[-2000:]

        report = truth_check(writer, truth, tmp_path)
        for day, day_truth in old.items():
            assert_lake_holds(writer, day_truth, day, tmp_path)
            assert run(writer, "verify", "--date", day.isoformat(), "--source", "hot")[0] == 0
            assert HotStore(roles).count_ticks(day) == day_truth.num_rows
        assert run(writer, "verify", "--date", DAY.isoformat())[0] == 0
        # verify fails where the stores disagree: a tick removed by hand (as the owner; the writer may not)
        with psycopg.connect(roles.pg_dsn, autocommit=True) as conn:
            conn.execute(f"DELETE FROM \"{roles.pg_schema}\".ticks WHERE (venue, symbol, ts, cum_volume) IN "
                         f"(SELECT venue, symbol, ts, cum_volume FROM \"{roles.pg_schema}\".ticks WHERE ts >= %s LIMIT 3)",
                         (datetime.combine(DAY, datetime.min.time(), tzinfo=KST),))
        code, output = run(writer, "verify", "--date", DAY.isoformat())
        assert code != 0 and "differ" in output, output
        record("writer role with ticks of past days", report, entries, 2, "operator:roles",
               past_days=len(old), past_day_ticks=sum(t.num_rows for t in old.values()))
        assert_truth(report)
    finally:
        owner.close()
        with psycopg.connect(roles.pg_dsn, autocommit=True) as conn:
            for role in (roles.pg_writer_role, roles.pg_reader_role):
                conn.execute(f'DROP OWNED BY "{role}"')
                conn.execute(f'DROP ROLE "{role}"')
