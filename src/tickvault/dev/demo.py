"""`tickvault demo`: the whole pipeline on one machine, then proof that nothing was lost or doubled.

With nothing configured it starts embedded PostgreSQL and Redis (PyPI wheels) and puts
the lake in a temporary directory; with TICKVAULT_PG_URL / TICKVAULT_REDIS_URL set it
uses those servers under a fresh schema and stream name, and removes them afterwards.
A simulated day (with re-sent duplicates and shuffled order, as real feeds deliver) goes
through the real publisher into the stream while both archivers run; then the stores are
read back and checked against what was generated. Everything the demo started is stopped
on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.config import Settings, redact_dsn
from ..core.errors import ConfigError
from ..core.stream import stream_last_id
from ..core.wire import NATURAL_KEY, TICK_SCHEMA, dedupe
from ..services.archiver import Archiver, Commit
from ..services.sync import VerifyReport, verify

STALL_TIMEOUT_S = 180.0
KST_OFFSET_US = 9 * 3600 * 1_000_000
DAY_US = 86400 * 1_000_000


@dataclass
class DemoOptions:
    day: date
    symbols: int = 20
    ticks: int = 200_000
    seed: int = 0
    dup_rate: float = 0.01
    shuffle_window: int = 50
    keep: bool = False  # shared servers: leave the demo schema and stream in place
    days: int = 1  # trading days ending at ``day``, each opening from the previous close
    lake_dir: Path | None = None  # keep the demo's lake here (None: a temp dir, removed)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DemoReport:
    options: DemoOptions
    servers: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        o = self.options
        return {
            "ok": self.ok,
            "date": o.day.isoformat(),
            "days": o.days,
            "lake": None if o.lake_dir is None else str(o.lake_dir),
            "symbols": o.symbols,
            "ticks": o.ticks,
            "seed": o.seed,
            "dup_rate": o.dup_rate,
            "shuffle_window": o.shuffle_window,
            "servers": self.servers,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "counts": self.counts,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


# ---------------------------------------------------------------- checks (pure; tested directly)
def check_counts(generated: int, hot: int, cold: int, venue: str | None = None) -> Check:
    name = "generated == hot == cold" + (f" ({venue})" if venue else "")
    return Check(name, generated == hot == cold, f"{generated} == {hot} == {cold}")


def check_no_duplicates(name: str, table: pa.Table) -> Check:
    extra = table.num_rows - dedupe(table).num_rows
    return Check(f"no duplicate ticks ({name})", extra == 0, "none" if extra == 0 else f"{extra} duplicated natural keys")


def cum_volume_breaks(table: pa.Table) -> dict[str, int]:
    """Per ``VENUE:symbol``, how many ticks do not continue that venue's running day volume.

    Each venue counts its own cumulative volume (cum = previous cum + volume). A lost tick
    shows up as a jump, a doubled one as a repeat; the first tick of a venue's KST date must
    carry cum_volume == volume (every day starts at zero).
    """
    if table.num_rows == 0:
        return {}
    kst_day = pc.divide(pc.add(table.column("ts").cast(pa.int64()), KST_OFFSET_US), DAY_US)
    ordered = table.append_column("tv_day", kst_day).sort_by(
        [("venue", "ascending"), ("symbol", "ascending"), ("tv_day", "ascending"), ("cum_volume", "ascending")])
    series = np.char.add(np.char.add(ordered.column("venue").to_numpy(zero_copy_only=False).astype(str), ":"),
                         ordered.column("symbol").to_numpy(zero_copy_only=False).astype(str))
    days = ordered.column("tv_day").to_numpy()
    volume = ordered.column("volume").to_numpy()
    cum = ordered.column("cum_volume").to_numpy()
    new_series = np.ones(len(series), dtype=bool)
    new_series[1:] = (series[1:] != series[:-1]) | (days[1:] != days[:-1])
    previous = np.concatenate([[0], cum[:-1]])
    expected = np.where(new_series, volume, previous + volume)
    bad = cum != expected
    out: dict[str, int] = {}
    for key in np.unique(series[bad]):
        out[str(key)] = int(bad[series == key].sum())
    return out


def check_continuity(name: str, table: pa.Table) -> Check:
    breaks = cum_volume_breaks(table)
    pairs = len(set(zip(table.column("venue").to_pylist(), table.column("symbol").to_pylist())))
    title = f"cum_volume continuous per venue and symbol ({name})"
    if not breaks:
        return Check(title, True, f"{pairs}/{pairs} (venue, symbol) series")
    worst = ", ".join(f"{s}: {n}" for s, n in sorted(breaks.items())[:5])
    return Check(title, False, f"{len(breaks)} series broken ({worst})")


def of_venue(table: pa.Table, venue: str) -> pa.Table:
    return table.filter(pc.equal(table.column("venue"), venue))


def check_equal(name: str, stored: pa.Table, truth: pa.Table) -> Check:
    ok = stored.cast(TICK_SCHEMA).equals(truth)
    return Check(f"stored values equal generated ({name})", ok, "all columns equal" if ok else "values differ (export both and compare)")


def verify_checks(result: VerifyReport) -> list[Check]:
    """One row per venue: `tickvault verify` proves every (venue, symbol) of the universe continuous."""
    return [
        Check(f"verify: universe complete and continuous ({venue})", bool(facts["complete"]),
              f"{facts['series']}/{facts['universe']} symbols, missing volume {facts['missing_volume']}, "
              f"{facts['out_of_session_ticks']} ticks outside sessions")
        for venue, facts in result.venues().items()
    ]


# ---------------------------------------------------------------- running it
def use_embedded(settings: Settings) -> tuple[bool, bool]:
    """(embedded PostgreSQL?, embedded Redis?): embedded unless the URL is configured."""
    return settings.pg_url is None, settings.redis_url is None


def _server_label(url: str) -> str:
    url = redact_dsn(url)
    return url.split("@")[-1] if "@" in url else url.split("//")[-1]


def run_demo(
    settings: Settings,
    options: DemoOptions,
    say: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the demo end to end and return its report; raises only on setup failures."""
    from ..core.stream import Publisher, connect
    from ..services.archiver import build_archiver
    from ..services.export import read_day
    from ..stores.hot import HotStore
    from ..stores.lake import Lake
    from .simulate import NXT_SHARE, generate_day, generate_days, nxt_share_on, plan_day, publish, store_universe

    report = DemoReport(options)
    embed_pg, embed_redis = use_embedded(settings)
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        started = time.monotonic()
        pg_url, redis_url = settings.pg_url, settings.redis_url
        if embed_pg or embed_redis:
            from .embedded import EmbeddedPostgres, EmbeddedRedis, require_wheels

            require_wheels(embed_pg, embed_redis)
            say("starting embedded servers (PostgreSQL and Redis from their PyPI wheels) ...")
            if embed_pg:
                pg = stack.enter_context(EmbeddedPostgres())
                pg_url = pg.url
            if embed_redis:
                rd = stack.enter_context(EmbeddedRedis())
                redis_url = rd.url
        if options.lake_dir is None:
            lake_dir = Path(tempfile.mkdtemp(prefix="tickvault-demo-lake-"))
            stack.callback(shutil.rmtree, lake_dir, True)
        else:
            lake_dir = prepare_kept_lake(options.lake_dir)
        demo = settings.model_copy(
            update={
                "pg_url": pg_url,
                "redis_url": redis_url,
                "pg_schema": f"demo_{run_id}",
                "stream": f"tickvault:demo:{run_id}:ticks",
                "lake_dir": lake_dir,
            }
        )
        if not options.keep or embed_pg:
            stack.callback(_drop_schema, demo)
        if not options.keep or embed_redis:
            stack.callback(_drop_stream, demo)
        report.servers = {
            "postgres": ("embedded " if embed_pg else "") + _server_label(demo.pg_dsn),
            "redis": ("embedded " if embed_redis else "") + _server_label(demo.redis_dsn),
            "schema": demo.pg_schema,
            "stream": demo.stream,
            "lake": str(lake_dir),
        }
        report.timings["servers"] = time.monotonic() - started
        say(
            f"servers: PostgreSQL {report.servers['postgres']} (schema {demo.pg_schema}), "
            f"Redis {report.servers['redis']} (stream {demo.stream}), lake " + ("in a temp dir" if options.lake_dir is None else f"in {lake_dir}")
        )

        hot_store = HotStore(demo)
        hot_store.init()
        lake = Lake(demo)
        lake.init()
        lake.close()
        report.servers["hot_mode"] = hot_store.mode

        t0 = time.monotonic()
        if options.days == 1:
            generated = [(options.day, generate_day(options.day, symbols=options.symbols, ticks=options.ticks, seed=options.seed))]
        else:
            generated = generate_days(options.day, options.days, symbols=options.symbols, ticks=options.ticks, seed=options.seed)
        days = [day for day, _ in generated]
        truth = pa.concat_tables([table for _, table in generated])
        for day in days:  # the universe (which symbols trade where) is the same plan every day
            store_universe(demo, day, plan_day(options.symbols, options.ticks, options.seed, nxt_share_on(day, NXT_SHARE)))
        on_nxt = int(plan_day(options.symbols, options.ticks, options.seed, nxt_share_on(options.day, NXT_SHARE)).nxt.sum())
        report.timings["generate"] = time.monotonic() - t0
        span = options.day.isoformat() if len(days) == 1 else f"{len(days)} trading days {days[0]} to {days[-1]}"
        say(
            f"simulating {span}: {options.symbols} symbols ({on_nxt} also on NXT), {truth.num_rows} ticks "
            f"(seed {options.seed}; {options.dup_rate:.1%} re-sent, shuffled within {options.shuffle_window})"
        )

        processed = {"hot": 0, "cold": 0}
        published = [0, 0]

        def observe(commit: Commit) -> None:
            processed[commit.group] += commit.entries

        archivers: list[Archiver] = []
        for group in ("hot", "cold"):
            archiver = build_archiver(demo, group, consumer=f"demo-{group}")
            archiver.observers.append(observe)
            archivers.append(archiver)
        threads = [threading.Thread(target=a.run, name=f"demo-{a.store.name}", daemon=True) for a in archivers]

        stopped = threading.Event()

        def stop_archivers() -> None:
            if stopped.is_set():
                return
            stopped.set()
            for a in archivers:
                a.stop()
            for t in threads:
                if t.ident is not None:  # Ctrl-C may arrive before every thread was started
                    t.join(60)
            for a in archivers:
                a.store.close()
                a.consumer.client.close()

        stack.callback(stop_archivers)
        for t in threads:
            t.start()

        def show() -> None:
            if progress is not None:
                done, total = published
                progress(f"published {done}/{total}   hot {processed['hot']}   cold {processed['cold']}")

        client = connect(demo.redis_dsn)
        stack.callback(client.close)
        t0 = time.monotonic()

        def on_publish(done: int, total: int) -> None:
            published[0], published[1] = done, total
            show()

        result = publish(
            Publisher(client, demo.stream),
            truth,
            dup_rate=options.dup_rate,
            shuffle_window=options.shuffle_window,
            seed=options.seed,
            on_progress=on_publish,
        )
        report.timings["publish"] = time.monotonic() - t0
        report.counts["entries"] = result.entries
        done_at = _wait_caught_up(client, demo.stream, processed, threads, show)
        for group, at in done_at.items():
            report.timings[f"{group}_caught_up"] = at - t0
        if progress is not None:
            progress("")
        stop_archivers()
        say(
            f"published {result.entries} entries in {report.timings['publish']:.1f} s; "
            f"hot caught up after {report.timings['hot_caught_up']:.1f} s, cold after {report.timings['cold_caught_up']:.1f} s"
        )

        t0 = time.monotonic()
        truth_sorted = truth.sort_by([(k, "ascending") for k in NATURAL_KEY])
        by_key = [(k, "ascending") for k in NATURAL_KEY]
        hot_ticks = pa.concat_tables([read_day(demo, "hot", day) for day in days]).sort_by(by_key)
        cold_ticks = pa.concat_tables([read_day(demo, "cold", day) for day in days]).sort_by(by_key)
        report.counts.update(generated=truth.num_rows, hot=sum(hot_store.count_ticks(day) for day in days),
                             cold=sum(_cold_count(demo, day) for day in days))
        dlq = int(client.xlen(demo.dlq_stream))
        report.counts["dead_letters"] = dlq
        report.checks = [check_counts(truth.num_rows, report.counts["hot"], report.counts["cold"])]
        for venue in sorted(set(truth.column("venue").to_pylist())):
            report.counts[f"generated_{venue}"] = of_venue(truth, venue).num_rows
            report.checks.append(check_counts(of_venue(truth, venue).num_rows, of_venue(hot_ticks, venue).num_rows,
                                              of_venue(cold_ticks, venue).num_rows, venue))
        report.checks += [
            check_no_duplicates("hot", hot_ticks),
            check_no_duplicates("cold", cold_ticks),
            check_continuity("hot", hot_ticks),
            check_continuity("cold", cold_ticks),
            check_equal("hot", hot_ticks, truth_sorted),
            check_equal("cold", cold_ticks, truth_sorted),
            Check("no dead letters", dlq == 0, f"{dlq} in {demo.dlq_stream}"),
        ]
        report.checks += verify_checks(verify(demo, options.day))
        report.timings["check"] = time.monotonic() - t0
        hot_store.close()
        if options.keep and not embed_pg:
            say(f"kept schema {demo.pg_schema} and stream {demo.stream} (--keep)" + ("" if options.lake_dir else "; the temp lake was removed"))
        if options.lake_dir is not None:
            say(f"the lake stays in {lake_dir}: `export TICKVAULT_LAKE_DIR={lake_dir}`, then "
                "`tickvault symbols --source cold` or `tickvault sql \"select count(*) from ticks\"`")
    return report


DEMO_MARK = ".tickvault-demo"


def prepare_kept_lake(directory: Path) -> Path:
    """A fresh directory for a kept demo lake: new, empty, or an earlier demo's lake (replaced) — never
    anything else, so a real lake is never overwritten by simulated ticks."""
    directory = Path(directory).absolute()
    if directory.exists() and any(directory.iterdir()):
        if not (directory / DEMO_MARK).exists():
            raise ConfigError(f"--lake {directory} exists and is not a demo lake: name a new directory")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / DEMO_MARK).write_text("a lake of simulated ticks written by `tickvault demo`\n")
    return directory


class DemoStalled(RuntimeError):
    """The archivers stopped making progress; the message says where to look."""


def _wait_caught_up(client, stream: str, processed: dict[str, int], threads: list[threading.Thread], show: Callable[[], None]) -> dict[str, float]:
    """Until both groups have read the stream's last entry and have nothing pending."""
    done: dict[str, float] = {}
    last_progress = time.monotonic()
    seen = dict(processed)
    while len(done) < 2:
        show()
        last_id = stream_last_id(client, stream)
        for g in client.xinfo_groups(stream):
            if g["name"] not in done and g["last-delivered-id"] == last_id and int(g["pending"]) == 0:
                done[g["name"]] = time.monotonic()
        if processed != seen:
            seen, last_progress = dict(processed), time.monotonic()
        if time.monotonic() - last_progress > STALL_TIMEOUT_S:
            raise DemoStalled(f"archivers made no progress for {STALL_TIMEOUT_S:.0f} s (hot {processed['hot']}, cold {processed['cold']}); see the log above")
        if not all(t.is_alive() for t in threads):
            raise DemoStalled("an archiver thread ended unexpectedly; see the log above")
        time.sleep(0.2)
    show()
    return done


def _cold_count(settings: Settings, day: date) -> int:
    from ..stores.lake import Lake

    lake = Lake(settings)
    try:
        return lake.count_ticks(day)
    finally:
        lake.close()


def _drop_schema(settings: Settings) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(settings.pg_dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(settings.pg_schema)))
    except psycopg.Error:
        pass  # embedded server already gone, or shared server unreachable: nothing more to do


def _drop_stream(settings: Settings) -> None:
    import redis

    try:
        client = redis.Redis.from_url(settings.redis_dsn, socket_connect_timeout=3)
        client.delete(settings.stream, settings.dlq_stream)
        client.close()
    except redis.RedisError:
        pass
