"""A deterministic, realistic two-venue trading day (KRX + NXT): the test oracle for the whole pipeline.

``generate_day`` returns every distinct tick of one simulated day as a TICK_SCHEMA table
(the *truth*); ``publish`` sends it through the real ``stream.Publisher``, optionally with
re-sent duplicates and locally shuffled order, the way real feeds misbehave. Everything is
vectorised with numpy: 500k ticks take about a second to generate.

Market shape (KRX rules since 2023-01-25): 6-digit codes; a previous close per symbol and
the ±30 % daily limits around it (on both venues); prices on the tick-size grid, following
one latent price path per symbol that both venues sample. Every session comes from the
session table (``core.calendar.sessions``), so special days and the KRX 2026 extension follow
it: an auction's match is one print at the start of the session it opens (KRX 09:00:00, NXT's
after-market single-price print at 15:40:00), a closing auction one print at its end (15:30:00),
a single-price session prints only at its matches (every 10 minutes, the last at its end),
the closing-price sessions (``*_close``) trade at the previous / the day's close, and every
other session trades continuously with a U-shaped intensity. NXT never prints in its quiet
windows (08:50–09:00:30, 15:20–15:40): they are in none of its sessions.

The NXT-eligible part of the universe (``nxt_share`` of the symbols, the most active ones, as
NXT lists large caps) trades on both venues; NXT carries about a third of those symbols'
trades (pre 24 %, main 59 %, after 17 % of NXT's, per the 2026-02 figures), and such symbols
do not trade in KRX's after-hours single-price session. Each venue counts its own cum_volume
(the running day volume per venue and symbol), so the natural key (venue, symbol, ts,
cum_volume) is unique even when a symbol trades several times a second. A weekend or holiday
is simulated with the regular sessions of the rules in force that date, so the demo works any day.
"""

from __future__ import annotations

import re
import time as clock
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.config import Settings
from ..core.stream import FrameLimits, Publisher
from ..core.wire import KST, NATURAL_KEY, PRICE_PRECISION, PRICE_SCALE, TICK_SCHEMA, VENUES, Venue, WireEncoder

#: Post-2023 KRX tick sizes for stocks: price < bound -> tick.
TICK_BOUNDS = np.array([2_000, 5_000, 20_000, 50_000, 200_000, 500_000], dtype=np.int64)
TICK_SIZES = np.array([1, 5, 10, 50, 100, 500, 1_000], dtype=np.int64)
PRICE_LIMIT = 0.30

REGULAR_OPEN = time(9, 0)
REGULAR_CLOSE = time(15, 30)
SINGLE_PRICE_EVERY = timedelta(minutes=10)

#: Share of the universe that is NXT-eligible (~700 of ~2,700 listed stocks, the most active).
NXT_SHARE = 0.3
#: Share of an NXT-eligible symbol's trades that happen on NXT (NXT ≈ 1/3 of combined value).
NXT_TRADE_SHARE = 0.35
#: Relative activity of a session, by venue and kind (normalised over the sessions of the day).
SESSION_WEIGHTS: dict[Venue, dict[str, float]] = {
    "KRX": {"continuous": 0.93, "pre": 0.01, "post": 0.01, "after": 0.04, "single_price": 0.01},
    "NXT": {"pre": 0.24, "continuous": 0.59, "after": 0.17},
}


@dataclass(frozen=True)
class SessionTimes:
    """When the simulated day's KRX regular session trades (late opens included)."""

    open: datetime
    close: datetime  # the closing-auction print
    trading_day: bool


@dataclass(frozen=True)
class SimSession:
    """One session of one venue as the simulator uses it: when its trades are stamped, and how."""

    venue: Venue
    name: str
    kind: str
    trades_start: datetime
    trades_end: datetime
    opens_with_match: bool  # an auction before it: one print per symbol at its start
    end: datetime  # the scheduled end (a single-price session's last match)


def session_times(day: date) -> SessionTimes:
    """The KRX regular session of ``day``; a weekend or holiday is simulated with regular hours."""
    from ..core import calendar

    try:
        session = calendar.session(day)
    except ValueError:
        return SessionTimes(datetime.combine(day, REGULAR_OPEN, KST), datetime.combine(day, REGULAR_CLOSE, KST), False)
    return SessionTimes(session.open, session.close, True)


def venue_sessions(day: date, venue: Venue) -> list[SimSession]:
    """The venue's trading sessions on ``day`` from the session table (regular ones on a closed day)."""
    from ..core import calendar

    midnight = datetime.combine(day, time(0), KST)
    if calendar.is_trading_day(day):
        windows = [(w.name, w.kind, w.start, w.end, w.trades_start, w.trades_end) for w in calendar.sessions(day, venue)]
    else:
        rule = calendar.session_table().rule(day, venue)
        specs = rule.plans["regular"].sessions if rule is not None else ()
        windows = [
            (s.name, s.kind, midnight + s.start, midnight + s.end,
             midnight + s.trades[0] if s.trades else None, midnight + s.trades[1] if s.trades else None)
            for s in specs
        ]
    auction_ends = {end for _, kind, _, end, _, _ in windows if kind == "auction"}
    return [
        SimSession(venue, name, kind, t_start, t_end, start in auction_ends, end)
        for name, kind, start, end, t_start, t_end in windows
        if t_start is not None and t_end is not None
    ]


def tick_size(price: np.ndarray) -> np.ndarray:
    """Tick size in won for each price (stocks; ETFs use 5 everywhere and are not simulated)."""
    return TICK_SIZES[np.searchsorted(TICK_BOUNDS, price, side="right")]


def snap_to_grid(price: np.ndarray) -> np.ndarray:
    """Nearest valid price on the tick grid (the bounds are multiples of the larger tick)."""
    price = np.asarray(price, dtype=np.float64)
    tick = tick_size(np.maximum(price, 1.0).astype(np.int64))
    snapped = np.round(price / tick).astype(np.int64) * tick
    return np.maximum(snapped, 1)


def price_limits(prev_close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Daily lower/upper limit prices: ±30 % of the previous close, inside the range, on the grid."""
    up = np.floor(prev_close * (1 + PRICE_LIMIT)).astype(np.int64)
    up -= up % tick_size(up)
    down = np.ceil(prev_close * (1 - PRICE_LIMIT)).astype(np.int64)
    rem = down % tick_size(down)
    down = np.where(rem == 0, down, down - rem + tick_size(down))
    return down, up


def symbol_codes(count: int, rng: np.random.Generator) -> list[str]:
    """Distinct 6-digit codes ending in 0, like KRX common shares."""
    if count > 99_999:
        raise ValueError("at most 99,999 simulated symbols")
    return [f"{n * 10:06d}" for n in np.sort(rng.choice(np.arange(1, 100_000), size=count, replace=False))]


def _intensity_cdf() -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF table of a session's trade intensity over [0, 1]: busy open, busier close (U-shape)."""
    x = np.linspace(0.0, 1.0, 10_001)
    density = 1.0 + 5.0 * np.exp(-x / 0.04) + 2.0 * np.exp(-(1.0 - x) / 0.066)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return cdf / cdf[-1], x


@dataclass(frozen=True)
class DayPlan:
    """Per-symbol facts of a simulated day (useful to tests: limits, previous closes, venues)."""

    symbols: list[str]
    prev_close: np.ndarray
    limit_down: np.ndarray
    limit_up: np.ndarray
    ticks_per_symbol: np.ndarray  # both venues together
    nxt: np.ndarray  # bool per symbol: NXT-eligible (trades on both venues)

    def universe(self) -> list[tuple[str, str]]:
        """The day's (venue, symbol) pairs, as ``write_universe`` takes them."""
        pairs = [("KRX", s) for s in self.symbols] + [("NXT", s) for s, on in zip(self.symbols, self.nxt) if on]
        return sorted(pairs, key=lambda p: (p[1], p[0]))


def _mandatory(nxt: np.ndarray) -> int:
    """Prints every symbol gets: KRX opening and closing auction, NXT's 15:40 after-market print."""
    return 2 * len(nxt) + int(nxt.sum())


def plan_day(symbols: int, ticks: int, seed: int, nxt_share: float = NXT_SHARE) -> DayPlan:
    if symbols < 1:
        raise ValueError("--symbols must be at least 1")
    if not 0.0 <= nxt_share <= 1.0:
        raise ValueError("--nxt-share must be between 0 and 1")
    rng = np.random.default_rng([seed, 1])
    codes = symbol_codes(symbols, rng)
    prev_close = snap_to_grid(np.exp(rng.uniform(np.log(1_000), np.log(600_000), size=symbols)))
    down, up = price_limits(prev_close)
    # Zipf-like activity: a few symbols trade far more than the rest; every symbol gets its auction prints.
    weights = 1.0 / np.arange(1, symbols + 1) ** 0.8
    weights = rng.permutation(weights)
    nxt = np.zeros(symbols, dtype=bool)
    nxt[np.argsort(-weights, kind="stable")[: round(symbols * nxt_share)]] = True
    need = _mandatory(nxt)
    if ticks < need:
        raise ValueError(f"--ticks must be at least 2 per symbol (opening and closing prints) and 1 more per NXT symbol: >= {need}")
    extra = rng.multinomial(ticks - need, weights / weights.sum())
    return DayPlan(codes, prev_close, down, up, extra + 2 + nxt, nxt)


@dataclass(frozen=True)
class _Segments:
    """Ticks per (venue, symbol, session) before times and prices are drawn."""

    venue: np.ndarray  # index into VENUES
    symbol: np.ndarray
    session: np.ndarray  # index into the day's session list
    count: np.ndarray
    fixed: np.ndarray  # the mandatory print at the session's start (auction match) or end (closing auction)


def _segments(plan: DayPlan, sessions: list[SimSession], rng: np.random.Generator) -> _Segments:
    """Split each symbol's ticks between the venues and over their sessions by relative activity."""
    extra = plan.ticks_per_symbol - 2 - plan.nxt
    nxt_extra = np.where(plan.nxt, rng.binomial(extra, NXT_TRADE_SHARE), 0)
    per_venue = {"KRX": extra - nxt_extra, "NXT": nxt_extra}
    parts: list[tuple[np.ndarray, ...]] = []
    for venue_idx, venue in enumerate(VENUES):
        mine = [i for i, s in enumerate(sessions) if s.venue == venue]
        for on_nxt_too in (False, True) if venue == "KRX" else (True,):
            rows = np.flatnonzero(plan.nxt == on_nxt_too)
            # NXT-eligible symbols do not trade in KRX's after-hours single-price session
            usable = [i for i in mine if not (venue == "KRX" and on_nxt_too and sessions[i].kind == "single_price")]
            weights = np.array([SESSION_WEIGHTS[venue].get(sessions[i].kind, 0.0) for i in usable])
            if not len(rows) or not len(usable):
                continue
            if weights.sum() == 0:
                weights = np.ones(len(usable))
            split = rng.multinomial(per_venue[venue][rows], weights / weights.sum()).reshape(len(rows), len(usable))
            for column, i in enumerate(usable):
                s = sessions[i]
                fixed = int(s.opens_with_match or s.kind == "closing_auction")
                parts.append((np.full(len(rows), venue_idx), rows, np.full(len(rows), i), split[:, column] + fixed,
                              np.full(len(rows), fixed, dtype=bool)))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return _Segments(empty, empty, empty, empty, empty.astype(bool))
    venue, symbol, session, count, fixed = (np.concatenate(col) for col in zip(*parts))
    keep = count > 0
    order = np.lexsort((session[keep], venue[keep], symbol[keep]))
    return _Segments(*(a[keep][order] for a in (venue, symbol, session, count, fixed)))


def generate_day(day: date, symbols: int = 20, ticks: int = 200_000, seed: int = 0, source: str = "sim",
                 nxt_share: float = NXT_SHARE) -> pa.Table:
    """Every distinct tick of one simulated two-venue day, ordered by exchange time (TICK_SCHEMA).

    ``nxt_share``: the fraction of the symbols that also trade on NXT (0: a KRX-only day)."""
    sessions = [s for v in VENUES for s in venue_sessions(day, v)]
    if not any(s.venue == "NXT" for s in sessions):
        nxt_share = 0.0  # before NXT's launch: a KRX-only day
    plan = plan_day(symbols, ticks, seed, nxt_share)
    rng = np.random.default_rng([seed, 2, day.toordinal()])
    seg = _segments(plan, sessions, rng)
    n = int(seg.count.sum())
    seg_of = np.repeat(np.arange(len(seg.count)), seg.count)
    seg_start = np.concatenate([[0], np.cumsum(seg.count)[:-1]])
    first_in_seg = np.zeros(n, dtype=bool)
    first_in_seg[seg_start] = True
    midnight = datetime.combine(day, time(0), KST)

    def offsets(values: list[datetime]) -> np.ndarray:
        return np.array([(v - midnight).total_seconds() for v in values], dtype=np.float64)

    t_from, t_to, end_at = offsets([s.trades_start for s in sessions]), offsets([s.trades_end for s in sessions]), offsets([s.end for s in sessions])
    kinds = np.array([s.kind for s in sessions])
    closes_by_name = np.array([s.name.endswith("_close") for s in sessions])

    # Times (seconds after KST midnight) by the session's kind.
    session = np.asarray(seg.session)[seg_of]
    lo, hi = t_from[session], t_to[session]
    cdf, grid = _intensity_cdf()
    t = lo + np.interp(rng.random(n), cdf, grid) * (hi - lo)
    single = kinds[session] == "single_price"
    matches = np.maximum(np.round((end_at[session] - lo) / SINGLE_PRICE_EVERY.total_seconds()), 1)
    t = np.where(single, lo + SINGLE_PRICE_EVERY.total_seconds() * (1 + np.floor(rng.random(n) * matches)), t)
    fixed = first_in_seg & np.asarray(seg.fixed)[seg_of]
    t = np.where(fixed | (kinds[session] == "closing_auction"), lo, t)  # auction matches
    t = np.minimum(np.floor(t), hi - 1)
    # a series is ordered by time; the fixed opening print first in its session
    series = np.asarray(seg.venue)[seg_of] * len(plan.symbols) + np.asarray(seg.symbol)[seg_of]
    order = np.lexsort((~fixed, t, series))
    t, session, fixed, series = t[order], session[order], fixed[order], series[order]
    venue_idx, sym = series // len(plan.symbols), series % len(plan.symbols)
    starts = np.flatnonzero(np.concatenate([[True], series[1:] != series[:-1]]))
    counts = np.diff(np.concatenate([starts, [n]]))

    # Prices: one latent log-price path per symbol on a minute grid, sampled by both venues.
    minutes = 24 * 60 + 1
    daily_sigma = rng.uniform(0.008, 0.035, size=len(plan.symbols))
    path = np.cumsum(rng.standard_normal((len(plan.symbols), minutes)) * (daily_sigma / np.sqrt(6.5 * 60))[:, None], axis=1)
    gap = rng.standard_normal(len(plan.symbols)) * 0.01  # the opening auction's gap, from 09:00 on
    open_minute = int((session_times(day).open - midnight).total_seconds() // 60)
    path[:, open_minute:] += gap[:, None]
    path -= path[:, :1]
    close_s = (session_times(day).close - midnight).total_seconds()

    def sample(at: np.ndarray, who: np.ndarray) -> np.ndarray:
        m = at / 60.0
        i = np.clip(np.floor(m).astype(np.int64), 0, minutes - 2)
        w = m - i
        return path[who, i] * (1 - w) + path[who, i + 1] * w

    noise = rng.standard_normal(n) * (daily_sigma[sym] / np.sqrt(6.5 * 60)) * 0.3
    log_move = sample(t, sym) + noise
    named_close = closes_by_name[session]
    before_open = t < close_s
    log_move = np.where(named_close & before_open, 0.0, log_move)  # 장전 종가: the previous close
    log_move = np.where(named_close & ~before_open, sample(np.full(n, close_s), sym), log_move)  # 장후 종가: today's close
    raw = plan.prev_close[sym] * np.exp(log_move)
    price = np.clip(snap_to_grid(raw), plan.limit_down[sym], plan.limit_up[sym])
    close_price = np.clip(snap_to_grid(plan.prev_close * np.exp(sample(np.full(len(plan.symbols), close_s), np.arange(len(plan.symbols))))),
                          plan.limit_down, plan.limit_up)
    price = np.where(named_close & ~before_open, close_price[sym], price)
    price = np.where((kinds[session] == "closing_auction") & (venue_idx == 0), close_price[sym], price)

    # Volumes: lognormal around ~2M KRW per trade; auction prints are much larger.
    median = np.maximum(2_000_000 / price, 1.0)
    volume = np.maximum(np.rint(median * np.exp(rng.standard_normal(n) * 1.2)), 1).astype(np.int64)
    auction = fixed | single | (kinds[session] == "closing_auction")
    volume[fixed] *= rng.integers(30, 120, size=int(fixed.sum()))
    cum_volume = np.cumsum(volume)
    cum_volume -= np.repeat(cum_volume[starts] - volume[starts], counts)

    # Side: the aggressor of an uptick buys, of a downtick sells, otherwise a coin; matches have none.
    move = np.diff(price, prepend=price[0])
    move[starts] = 0
    coin = rng.random(n) < 0.5
    buy = np.where(move > 0, True, np.where(move < 0, False, coin))
    side_idx = np.where(buy, 0, 1)

    # Global time order (stable: a series' ticks keep their cum_volume order).
    glob = np.lexsort((series, t))
    venue_idx, sym, t, price, volume, cum_volume, side_idx, auction = (
        a[glob] for a in (venue_idx, sym, t, price, volume, cum_volume, side_idx, auction))

    base_us = int(midnight.timestamp()) * 1_000_000
    ts_us = base_us + t.astype(np.int64) * 1_000_000
    latency_us = rng.integers(2_000, 60_000, size=n)
    received_us = ts_us + rng.integers(0, 1_000_000, size=n) + latency_us

    codes = pa.array(plan.symbols, pa.string())
    sides = pa.array(["B", "S"], pa.string())
    columns = [
        pa.DictionaryArray.from_arrays(pa.array(venue_idx.astype(np.int32)), pa.array(list(VENUES), pa.string())).cast(pa.string()),
        pa.DictionaryArray.from_arrays(pa.array(sym.astype(np.int32)), codes).cast(pa.string()),
        pa.array(ts_us, pa.int64()).cast(TICK_SCHEMA.field("ts").type),
        pa.array(price, pa.int64()).cast(pa.decimal128(PRICE_PRECISION + 5, PRICE_SCALE)).cast(TICK_SCHEMA.field("price").type),
        pa.array(volume, pa.int64()),
        pa.array(cum_volume, pa.int64()),
        pa.DictionaryArray.from_arrays(pa.array(side_idx.astype(np.int32), mask=auction), sides).cast(pa.string()),
        pa.array(np.full(n, source, dtype=object), pa.string()),
        pa.array(received_us, pa.int64()).cast(TICK_SCHEMA.field("received_at").type),
    ]
    return pa.table(columns, schema=TICK_SCHEMA)


def store_universe(settings: Settings, day: date, plan: DayPlan) -> int:
    """Record the plan's (venue, symbol) pairs as the day's universe in both stores; returns how many."""
    from ..stores.hot import HotStore
    from ..stores.lake import Lake

    pairs = plan.universe()
    for store in (HotStore(settings), Lake(settings)):
        try:
            store.write_universe(day, pairs, "sim")
        finally:
            store.close()
    return len(pairs)


def wire_order(rows: int, dup_rate: float = 0.0, shuffle_window: int = 0, seed: int = 0) -> np.ndarray:
    """Row indices in the order they go on the wire: some re-sent a little later, then locally shuffled.

    A re-send follows its original by 1–500 positions (a reconnecting feed replays its
    recent past); the shuffle moves every entry by less than ``shuffle_window`` positions.
    """
    if not 0.0 <= dup_rate <= 1.0:
        raise ValueError("--dup-rate must be between 0 and 1")
    if shuffle_window < 0:
        raise ValueError("--shuffle-window must be >= 0")
    rng = np.random.default_rng([seed, 3])
    index = np.arange(rows, dtype=np.int64)
    position = index.astype(np.float64)
    n_dup = round(rows * dup_rate)
    if n_dup:
        again = rng.choice(rows, size=n_dup, replace=False)
        index = np.concatenate([index, again])
        position = np.concatenate([position, again + rng.integers(1, 501, size=n_dup) + 0.5])
        order = np.argsort(position, kind="stable")
        index = index[order]
    if shuffle_window > 1:
        jitter = np.arange(len(index)) + rng.uniform(0, shuffle_window, size=len(index))
        index = index[np.argsort(jitter, kind="stable")]
    return index


@dataclass
class PublishResult:
    entries: int  # trades sent (duplicates included): v1 entries, or rows of v2 frames
    distinct: int  # distinct ticks
    seconds: float
    stream_entries: int = 0  # stream entries added (fewer than ``entries`` with frames)


def publish(
    publisher: Publisher,
    table: pa.Table,
    *,
    dup_rate: float = 0.0,
    shuffle_window: int = 0,
    seed: int = 0,
    pace: str = "max",
    on_progress: Callable[[int, int], None] | None = None,
    chunk: int = 5_000,
    sleep: Callable[[float], None] = clock.sleep,
    frames: FrameLimits | None = None,
) -> PublishResult:
    """Send ``table`` through the real publisher; ``pace='realtime'`` keeps exchange-time spacing.
    ``frames`` with ``max_trades`` > 0 sends v2 frames (duplicates and shuffling stay per trade),
    else one v1 entry per trade; ``entries`` counts trades sent either way."""
    if pace not in ("max", "realtime"):
        raise ValueError("pace must be 'max' or 'realtime'")
    order = wire_order(table.num_rows, dup_rate, shuffle_window, seed)
    encoder = WireEncoder(table) if frames is None or frames.max_trades <= 0 else None
    ts_s = table.column("ts").cast(pa.int64()).to_numpy() // 1_000_000
    started = clock.monotonic()
    sent = added = 0
    for part in _paced_chunks(order, ts_s, pace, chunk, started, sleep):
        if encoder is not None:
            added += len(publisher.publish_fields(encoder.fields(int(i)) for i in part))
        elif frames is not None:
            added += len(publisher.publish_table(table.take(part), frames.max_trades, frames.max_bytes))
        sent += len(part)
        if on_progress is not None:
            on_progress(sent, len(order))
    return PublishResult(sent, table.num_rows, clock.monotonic() - started, added)


def _paced_chunks(
    order: np.ndarray, ts_s: np.ndarray, pace: str, chunk: int, started: float, sleep: Callable[[float], None]
) -> Iterator[np.ndarray]:
    if pace == "max" or len(order) == 0:
        for start in range(0, len(order), chunk):
            yield order[start : start + chunk]
        return
    # realtime: an entry goes out when the wall clock reaches its exchange second (running max, as shuffled
    # entries may step back in time); entries of the same second travel together.
    due = np.maximum.accumulate(ts_s[order]) - ts_s[order[0]]
    bounds = np.flatnonzero(np.diff(due)) + 1
    for part_idx, part in zip(np.split(np.arange(len(order)), bounds), np.split(order, bounds)):
        wait = started + float(due[part_idx[0]]) - clock.monotonic()
        if wait > 0:
            sleep(wait)
        for start in range(0, len(part), chunk):
            yield part[start : start + chunk]


def write_truth(table: pa.Table, path: str | Path) -> None:
    """The distinct ticks as one plain Parquet file, sorted by the natural key."""
    ordered = table.sort_by([(key, "ascending") for key in NATURAL_KEY])
    pq.write_table(ordered, str(path), compression="zstd")


def day_of(value: str | date | None) -> date:
    """A KST trading date from YYYY-MM-DD, default today in KST."""
    if value is None:
        return datetime.now(KST).date()
    if isinstance(value, date):
        return value
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return date.fromisoformat(value)


def describe(table: pa.Table) -> Mapping[str, object]:
    """A few facts for the CLI summary."""
    ts = table.column("ts")
    venues = table.group_by("venue").aggregate([("symbol", "count_distinct"), ("venue", "count")])
    per_venue = zip(*(venues.column(c).to_pylist() for c in ("venue", "symbol_count_distinct", "venue_count")))
    return {
        "ticks": table.num_rows,
        "symbols": len(pc.unique(table.column("symbol"))),
        "venues": {v: {"ticks": n, "symbols": k} for v, k, n in sorted(per_venue)},
        "first_ts": pc.min(ts).as_py().astimezone(KST).isoformat() if table.num_rows else None,
        "last_ts": pc.max(ts).as_py().astimezone(KST).isoformat() if table.num_rows else None,
    }


__all__ = [
    "DayPlan",
    "PublishResult",
    "SimSession",
    "day_of",
    "generate_day",
    "plan_day",
    "price_limits",
    "publish",
    "session_times",
    "snap_to_grid",
    "store_universe",
    "tick_size",
    "venue_sessions",
    "wire_order",
    "write_truth",
]
