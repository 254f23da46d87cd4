"""`tickvault report --date D --out report.html`: the day's integrity as one page to look at.

One self-contained HTML file (plotly's JavaScript embedded once, so it works offline) with, per
venue, a coverage heat map (symbols × minutes: proven, traded but not proven, gap, recovered, no
trading), the volume profile, the gaps with what recovery did about each, hot vs cold agreement
per symbol, and the candles of one symbol. The lake is the basis; the hot store adds the
agreement and recovery sections when it can be read (the page says so when it cannot).
`tickvault run` writes one after each day's recovery when ``report_dir`` is set.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..core.calendar import trading_day_bounds
from ..core.config import Settings
from ..core.errors import StoreError, TickvaultError
from ..core.extras import import_optional
from ..core.wire import KST
from ..services.api import Vault
from ..stores.hot import HotStore
from ..stores.lake import Lake

log = logging.getLogger(__name__)

#: heat-map cell states, in the colour scale's order
NO_TRADING, PROVEN, UNPROVEN, GAP, RECOVERED = range(5)
STATE_NAMES = ("no trading", "proven", "traded, not proven", "gap", "recovered")
STATE_COLOURS = ("#f2f2f2", "#2e9e5b", "#9ecae1", "#d62728", "#ff9f1c")
SECTIONS = ("coverage", "volume", "gaps", "agreement", "candles")


@dataclass
class DayFacts:
    """What the page shows, read once from the stores."""

    day: date
    profile: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    proven: set[tuple[str, str]]
    recovery: list[dict[str, Any]] | None  # None: the hot store could not be read
    agreement: list[dict[str, Any]] | None
    symbol: str | None
    candles: Any = None
    notes: list[str] = field(default_factory=list)


def gather(settings: Settings, day: date, symbol: str | None = None) -> DayFacts:
    """Read the day from the lake (and the hot store, when it answers)."""
    start, end = trading_day_bounds(day)
    lake = Lake(settings)
    try:
        profile = lake.minute_profile(day)
        gaps = [{"venue": b.venue, "symbol": b.symbol, "from": b.prev_ts, "to": b.ts, "missing_volume": b.missing}
                for b in lake.breaks(start, end, None) if b.missing > 0]
        proven = {(venue, sym) for (_, venue, sym), status in lake.integrity_status(day, day).items() if status == "ok"}
        cold_prints = {(f.venue, f.symbol, f.minute): (f.ticks, f.volume, f.checksum) for f in lake.minute_fingerprints(start, end, None)}
    finally:
        lake.close()
    notes: list[str] = []
    recovery: list[dict[str, Any]] | None = None
    agreement: list[dict[str, Any]] | None = None
    hot = HotStore(settings)
    try:
        recovery = hot.read_recovery_report(day)
        hot_prints = {(f.venue, f.symbol, f.minute): (f.ticks, f.volume, f.checksum) for f in hot.minute_fingerprints(start, end, None)}
        agreement = _agreement(hot_prints, cold_prints)
    except StoreError as exc:
        notes.append(f"hot store not read ({str(exc).splitlines()[0]}): no recovery or agreement sections")
    finally:
        hot.close()
    volumes: dict[str, int] = {}
    for row in profile:
        volumes[row["symbol"]] = volumes.get(row["symbol"], 0) + int(row["volume"])
    chosen = symbol or (max(volumes, key=lambda s: volumes[s]) if volumes else None)
    facts = DayFacts(day, profile, gaps, proven, recovery, agreement, chosen, notes=notes)
    if chosen is not None:
        with Vault(settings) as vault:
            facts.candles = vault.candles(chosen, "5m", day, source="cold", session="extended")
    return facts


def _agreement(hot: dict[tuple[str, str, int], tuple[int, int, int]], cold: dict[tuple[str, str, int], tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Per (venue, symbol): minutes where both stores hold the same ticks, and minutes where they differ."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for key in hot.keys() | cold.keys():
        row = rows.setdefault(key[:2], {"venue": key[0], "symbol": key[1], "agree": 0, "differ": 0, "hot_ticks": 0, "cold_ticks": 0})
        row["agree" if hot.get(key) == cold.get(key) else "differ"] += 1
        row["hot_ticks"] += hot.get(key, (0, 0, 0))[0]
        row["cold_ticks"] += cold.get(key, (0, 0, 0))[0]
    return [rows[k] for k in sorted(rows)]


def heat_map(facts: DayFacts, venue: str) -> tuple[list[str], list[datetime], list[list[int]]]:
    """Symbols (rows), minutes (columns, KST) and each cell's state for one venue."""
    rows = [r for r in facts.profile if r["venue"] == venue]
    if not rows:
        return [], [], []
    minutes = range(min(r["minute"] for r in rows), max(r["minute"] for r in rows) + 1)
    symbols = sorted({r["symbol"] for r in rows})
    index = {m: i for i, m in enumerate(minutes)}
    grid = [[NO_TRADING] * len(minutes) for _ in symbols]
    row_of = {s: i for i, s in enumerate(symbols)}
    for r in rows:
        state = RECOVERED if r["recovered"] else (PROVEN if (venue, r["symbol"]) in facts.proven else UNPROVEN)
        grid[row_of[r["symbol"]]][index[r["minute"]]] = state
    for gap in facts.gaps:
        if gap["venue"] != venue or gap["symbol"] not in row_of or gap["from"] is None:
            continue
        first = int(gap["from"].timestamp() // 60) + 1
        last = int(gap["to"].timestamp() // 60) - 1
        for minute in range(max(first, minutes.start), min(last, minutes.stop - 1) + 1):
            grid[row_of[gap["symbol"]]][index[minute]] = GAP
    labels = [datetime.fromtimestamp(m * 60, UTC).astimezone(KST) for m in minutes]
    return symbols, labels, grid


def render(facts: DayFacts) -> str:
    """The page: one HTML document, plotly's bundle embedded in the first figure."""
    go = import_optional("plotly.graph_objects", "report", "tickvault report")
    figures: list[tuple[str, str, Any]] = []
    venues = sorted({r["venue"] for r in facts.profile})
    for venue in venues:
        symbols, labels, grid = heat_map(facts, venue)
        scale = [[i / (len(STATE_COLOURS) - 1), c] for i, c in enumerate(STATE_COLOURS)]
        fig = go.Figure(go.Heatmap(z=grid, x=labels, y=symbols, zmin=0, zmax=len(STATE_COLOURS) - 1, colorscale=scale,
                                   colorbar={"tickvals": list(range(len(STATE_NAMES))), "ticktext": list(STATE_NAMES)}))
        fig.update_layout(title=f"{venue}: coverage by minute", height=max(300, 22 * len(symbols) + 120))
        figures.append((f"coverage-{venue}", f"Coverage — {venue}", fig))
    volume = go.Figure()
    for venue in venues:
        per_minute: dict[int, int] = {}
        for r in facts.profile:
            if r["venue"] == venue:
                per_minute[r["minute"]] = per_minute.get(r["minute"], 0) + int(r["volume"])
        volume.add_bar(x=[datetime.fromtimestamp(m * 60, UTC).astimezone(KST) for m in sorted(per_minute)],
                       y=[per_minute[m] for m in sorted(per_minute)], name=venue)
    volume.update_layout(title="Volume per minute", barmode="stack")
    figures.append(("volume", "Volume profile", volume))
    figures.append(("gaps", "Gaps and recovery", _gap_table(go, facts)))
    figures.append(("agreement", "Hot vs cold", _agreement_table(go, facts)))
    if facts.candles is not None and facts.candles.num_rows:
        c = facts.candles.to_pydict()
        candles = go.Figure(go.Candlestick(x=[b.astimezone(KST) for b in c["bucket"]], open=[float(v) for v in c["open"]],
                                           high=[float(v) for v in c["high"]], low=[float(v) for v in c["low"]],
                                           close=[float(v) for v in c["close"]], name=facts.symbol))
        candles.update_layout(title=f"{facts.symbol}: 5m candles", xaxis_rangeslider_visible=False)
    else:
        candles = go.Figure().update_layout(title="no candles: the lake holds no ticks that day")
    figures.append(("candles", f"Candles — {facts.symbol or '-'}", candles))
    parts = []
    for number, (anchor, heading, fig) in enumerate(figures):
        body = fig.to_html(full_html=False, include_plotlyjs=number == 0, div_id=f"fig-{anchor}")
        parts.append(f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>{body}</section>')
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in facts.notes)
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>tickvault {facts.day}</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}.note{color:#a33}</style></head>"
            f"<body><h1>tickvault — {facts.day}</h1>{notes}{''.join(parts)}</body></html>")


def _gap_table(go: Any, facts: DayFacts) -> Any:
    recovered = {(r["venue"], r["symbol"]): r for r in facts.recovery or []}
    rows = [(g["venue"], g["symbol"], _kst(g["from"]), _kst(g["to"]), g["missing_volume"],
             _recovery_of(recovered.get((g["venue"], g["symbol"])), facts.recovery)) for g in facts.gaps]
    rows += [(r["venue"], r["symbol"], "", "", 0, f"{r['status']}: {r['ticks_recovered']} ticks, {r['volume_recovered']} volume recovered")
             for r in facts.recovery or [] if r["ticks_recovered"] and not any(g["symbol"] == r["symbol"] for g in facts.gaps)]
    header = ["venue", "symbol", "after", "before", "missing volume", "recovery"]
    columns = [list(col) for col in zip(*rows)] if rows else [[] for _ in header]
    fig = go.Figure(go.Table(header={"values": header}, cells={"values": columns}))
    return fig.update_layout(title=f"{len(facts.gaps)} open gap(s)", height=200 + 24 * len(rows))


def _recovery_of(row: dict[str, Any] | None, ran: list[dict[str, Any]] | None) -> str:
    if ran is None:
        return "unknown (hot store not read)"
    if row is None:
        return "not recovered yet"
    return f"{row['status']}: {row['ticks_recovered']} ticks recovered"


def _agreement_table(go: Any, facts: DayFacts) -> Any:
    rows = facts.agreement or []
    header = ["venue", "symbol", "minutes agreeing", "minutes differing", "hot ticks", "cold ticks"]
    columns = [[r[k] for r in rows] for k in ("venue", "symbol", "agree", "differ", "hot_ticks", "cold_ticks")]
    differ = sum(r["differ"] for r in rows)
    title = "hot store not read" if facts.agreement is None else ("hot and cold agree" if differ == 0 else f"{differ} minute(s) differ")
    return go.Figure(go.Table(header={"values": header}, cells={"values": columns})).update_layout(title=title, height=200 + 24 * len(rows))


def _kst(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(KST).strftime("%H:%M:%S")


def write_report(settings: Settings, day: date, out: Path, symbol: str | None = None) -> Path:
    """Render the day's page into ``out`` (atomically) and return it."""
    page = render(gather(settings, day, symbol))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def daily_report_path(settings: Settings, day: date) -> Path | None:
    """Where `tickvault run` writes the day's page (None: report_dir not set)."""
    if settings.report_dir is None:
        return None
    Path(settings.report_dir).mkdir(parents=True, exist_ok=True)
    return Path(settings.report_dir) / f"tickvault-{day.isoformat()}.html"


def write_daily_report(settings: Settings, day: date) -> None:
    """After the day's recovery (`tickvault run`): the page into report_dir; a failure is logged, never fatal."""
    target = daily_report_path(settings, day)
    if target is None:
        return
    try:
        write_report(settings, day, target)
        log.info("daily report written: %s", target)
    except (TickvaultError, OSError) as exc:
        log.warning("daily report of %s not written: %s", day, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


