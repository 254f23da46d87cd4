"""A whole simulated two-venue trading day replayed at maximum speed through both archivers.

The day: a KRX day and an NXT day of the same symbols (NXT about a third of KRX's trades, as
on the desk), merged in exchange-time order, published as fast as the publisher goes to
`tickvault archive hot` and `tickvault archive cold` (separate processes, default settings)
until both groups are drained. Reports ticks/s and the minutes the day takes, per wire format
(common.WIRE_FORMATS), with the archivers' peak RSS.

    python bench/day.py [--ticks N]      (last line: JSON of all figures)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DAY, WIRE_FORMATS, emit, isolated_settings, ratio, say
from ingest import archive_until_drained

from tickvault.dev.simulate import generate_day
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

NXT_SHARE = 0.25  # of the day's trades


def two_venue_day(ticks: int, symbols: int) -> pa.Table:
    nxt_ticks = int(ticks * NXT_SHARE)
    krx = generate_day(DAY, symbols=symbols, ticks=ticks - nxt_ticks, seed=11)
    nxt = generate_day(DAY, symbols=symbols, ticks=nxt_ticks, seed=12)
    nxt = nxt.set_column(nxt.schema.get_field_index("venue"), nxt.schema.field("venue"), pa.array(["NXT"] * nxt.num_rows, pa.string()))
    day = pa.concat_tables([krx, nxt])
    return day.take(pc.sort_indices(day, [("ts", "ascending"), ("venue", "ascending")]))


def run(ticks: int, symbols: int) -> dict[str, float]:
    table = two_venue_day(ticks, symbols)
    print(f"day: {ticks:,} ticks of {symbols} symbols on two venues, {os.cpu_count()} cores", flush=True)
    out: dict[str, float] = {"day_ticks": ticks, "day_symbols": symbols}
    for wire in WIRE_FORMATS:
        with isolated_settings(f"day{wire}") as s:
            result = archive_until_drained(s, table, wire)
            hot, lake = HotStore(s), Lake(s)
            stored = {"hot": hot.count_ticks(DAY), "cold": lake.count_ticks(DAY)}
            hot.close(), lake.close()
        if any(n != ticks for n in stored.values()):
            print(f"  INTEGRITY: stored {stored} of {ticks:,} ticks", flush=True)
        rate = ticks / result["seconds"]
        key = "day" if wire == "v1" else f"day_{wire}"
        out[f"{key}_ticks_per_s"] = round(rate)
        out[f"{key}_minutes"] = round(result["seconds"] / 60, 2)
        out[f"{key}_all_stored"] = all(n == ticks for n in stored.values())
        for g in ("hot", "cold"):
            out[f"{key}_archiver_{g}_peak_rss_mb"] = result[f"{g}_peak_rss_mb"]
            out[f"{key}_archiver_{g}_peak_anon_mb"] = result[f"{g}_peak_anon_mb"]
        say(f"two-venue day ({wire}) XADD -> both stores drained", rate)
        print(f"  the day took {result['seconds'] / 60:.2f} min; peak RSS hot {result['hot_peak_rss_mb']:.0f} MB, "
              f"cold {result['cold_peak_rss_mb']:.0f} MB", flush=True)
        if wire != "v1":
            out[f"{wire}_vs_v1_day_ratio"] = ratio(rate, out["day_ticks_per_s"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=2_000_000, help="trades in the day (both venues)")
    parser.add_argument("--symbols", type=int, default=200)
    args = parser.parse_args()
    emit(run(args.ticks, args.symbols))


if __name__ == "__main__":
    main()
