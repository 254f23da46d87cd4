"""Run every benchmark, print every ratio against its target, end with one JSON line.

    python bench/run.py [--quick] [--only ingest,latency,...]

Each bench runs as its own process (so one's memory and threads never skew another's)
and its output is shown as it goes. Figures are collected from each bench's last JSON
line (or, for benches that print only text lines, from their "<label> <n> ticks/s"
lines) and merged, prefixed by the bench name: ``ingest.hot_ratio_vs_staged_upsert``,
``latency.latency_20k_cold_p99_ms``, ``day.day_ticks_per_s``, ``eod.eod_compact_seconds``,
``hot.*``, ``query.*``, ``metrics.*``. The throughput and latency targets are checked in ``targets.*`` (true = met). Keys are
documented in BENCHMARKS.md. --quick shrinks every bench to a few minutes in total.

Servers: TICKVAULT_BENCH_PG_URL / TICKVAULT_BENCH_REDIS_URL (default the local
127.0.0.1:5432/test and :6379); TICKVAULT_BENCH_TSDB_URL (optional) adds the TimescaleDB
mode to bench_hot. Every bench uses its own schema / stream / lake and removes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import PG_URL, REDIS_URL  # noqa: E402

#: name -> (script, full args, quick args)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "ingest": ("ingest.py", ["--ticks", "1000000"], ["--ticks", "200000"]),
    "latency": ("latency.py", ["--rates", "20000,60000", "--seconds", "30"], ["--rates", "20000,60000", "--seconds", "10"]),
    "day": ("day.py", ["--ticks", "5000000", "--symbols", "500"], ["--ticks", "300000", "--symbols", "100"]),
    "eod": ("eod.py", ["--ticks", "10000000"], ["--quick"]),
    "hot": ("bench_hot.py", ["--pg", PG_URL, "--ticks", "200000"], ["--pg", PG_URL, "--ticks", "50000"]),
    "query": ("bench_query.py", [], ["--ticks-per-day", "2000", "--symbols", "50", "--ticks-per-symbol", "2000", "--repeat", "3"]),
    "sync": ("bench_sync.py", ["--pg", PG_URL], ["--pg", PG_URL, "--ticks", "200000", "--symbols", "50"]),
    "metrics": ("bench_metrics.py", ["--pg", PG_URL, "--redis", REDIS_URL], ["--pg", PG_URL, "--redis", REDIS_URL, "--ticks", "50000", "--rounds", "1"]),
}

#: target key -> (figure, comparison, bound, what it means): the targets of issue 15
TARGETS = {
    "dual_v2_vs_hot_raw_staged_upsert": ("ingest.dual_v2_ratio_vs_hot_raw_staged_upsert", ">=", 0.7,
                                         "dual write (v2 frames) >= 0.7x hot raw staged upsert"),
    "dual_v2_tsdb_vs_hot_raw_staged_upsert": ("ingest.dual_v2_tsdb_ratio_vs_hot_raw_staged_upsert", ">=", 0.7,
                                              "dual write (v2, hot in TimescaleDB mode) >= 0.7x its hot raw staged upsert"),
    "dual_v2_vs_v1": ("ingest.v2_vs_v1_dual_ratio", ">=", 2.5, "dual write v2 >= 2.5x v1"),
    "hot_vs_raw_staged_upsert": ("ingest.hot_ratio_vs_staged_upsert", ">=", 0.7, "hot sink (PostgreSQL) >= 0.7x raw staged upsert"),
    "hot_tsdb_vs_raw_staged_upsert": ("ingest.hot_tsdb_ratio_vs_staged_upsert", ">=", 0.85,
                                      "hot sink (TimescaleDB) >= 0.85x raw staged upsert"),
    "cold_vs_raw_lake_write": ("ingest.cold_ratio_vs_raw", ">=", 0.8, "cold sink >= 0.8x raw lake write"),
    "e2e_hot_p99_20k": ("latency.latency_20k_hot_p99_ms", "<", 250, "hot e2e p99 < 250 ms at 20k/s"),
    "e2e_cold_p99_20k": ("latency.latency_20k_cold_p99_ms", "<", 250, "cold e2e p99 < 250 ms at 20k/s"),
    "e2e_hot_p99_60k": ("latency.latency_60k_hot_p99_ms", "<", 500, "hot e2e p99 < 500 ms at 60k/s"),
    "e2e_cold_p99_60k": ("latency.latency_60k_cold_p99_ms", "<", 500, "cold e2e p99 < 500 ms at 60k/s"),
    "archiver_hot_rss_under_250mb": ("ingest.archiver_hot_peak_rss_mb", "<", 250, "hot archiver peak RSS (VmHWM) < 250 MB"),
    "archiver_cold_rss_under_250mb": ("ingest.archiver_cold_peak_rss_mb", "<", 250, "cold archiver peak RSS (VmHWM) < 250 MB"),
    "archiver_hot_anon_under_250mb": ("ingest.archiver_hot_peak_anon_mb", "<", 250, "hot archiver peak private RSS < 250 MB"),
    "archiver_cold_anon_under_250mb": ("ingest.archiver_cold_peak_anon_mb", "<", 250, "cold archiver peak private RSS < 250 MB"),
}

TEXT_FIGURE = re.compile(r"^\s*(?P<label>.+?)\s+(?P<value>[\d,]+(?:\.\d+)?)\s+ticks/s")
TEXT_SECONDS = re.compile(r"^\s*(?P<label>[^:]+):\s*(?P<value>\d+(?:\.\d+)?)s\b")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def figures_of(lines: list[str]) -> dict[str, object]:
    """The bench's last JSON object, else its '<label> <n> ticks/s' lines."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                break
            return flatten(value)
    found: dict[str, object] = {}
    for line in lines:
        m = TEXT_FIGURE.match(line)
        if m:
            found[f"{slug(m['label'])}_ticks_per_s"] = float(m["value"].replace(",", ""))
            continue
        m = TEXT_SECONDS.match(line)
        if m:
            found[f"{slug(m['label'])}_seconds"] = float(m["value"])
    return found


def flatten(value: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def run_bench(name: str, quick: bool) -> tuple[dict[str, object], float, int]:
    script, full, short = BENCHES[name]
    cmd = [sys.executable, str(HERE / script), *(short if quick else full)]
    if name == "hot" and os.environ.get("TICKVAULT_BENCH_TSDB_URL"):
        cmd += ["--tsdb", os.environ["TICKVAULT_BENCH_TSDB_URL"]]
    print(f"\n=== {name}: {' '.join(Path(c).name if c.endswith('.py') else c for c in cmd[1:])}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"  | {line}", end="", flush=True)
        lines.append(line)
    code = proc.wait()
    return figures_of(lines), time.perf_counter() - started, code


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_gb": mem_gb, "python": platform.python_version(),
            "loadavg_1m_at_start": round(os.getloadavg()[0], 1)}


def check_targets(results: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    print("\n=== targets", flush=True)
    for key, (figure, op, bound, meaning) in TARGETS.items():
        value = results.get(figure)
        if not isinstance(value, (int, float)):
            print(f"  {meaning:<58} not measured", flush=True)
            continue
        met = value >= bound if op == ">=" else value < bound
        out[f"targets.{key}"] = met
        print(f"  {meaning:<58} {value:>10}  {'MET' if met else 'NOT MET'}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes in total")
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHES)}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown bench(es) {sorted(unknown)}; choose from {','.join(BENCHES)}")
    results: dict[str, object] = {"mode": "quick" if args.quick else "full"}
    results.update({f"machine.{k}": v for k, v in machine().items()})
    print(f"tickvault benchmarks ({results['mode']}) on {results['machine.cpus']} cores, {results['machine.cpu_model']}, "
          f"{results['machine.mem_gb']} GB, load {results['machine.loadavg_1m_at_start']}", flush=True)
    failed = []
    for name in names:
        figures, seconds, code = run_bench(name, args.quick)
        results.update({f"{name}.{k}": v for k, v in figures.items()})
        results[f"{name}.seconds"] = round(seconds, 1)
        if code != 0:
            failed.append(name)
            results[f"{name}.exit_code"] = code
    print("\n=== ratios (ours / raw limit, same run)", flush=True)
    for key, value in results.items():
        if "ratio" in key:
            print(f"  {key:<58} {value}", flush=True)
    results.update(check_targets(results))
    results["machine.loadavg_1m_at_end"] = round(os.getloadavg()[0], 1)
    results["failed"] = failed
    print(json.dumps(results, sort_keys=True), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
