"""A deterministic, realistic KRX trading day: the test oracle for the whole pipeline.

``generate_day`` returns every distinct tick of one simulated day as a TICK_SCHEMA table
(the *truth*); ``publish`` sends it through the real ``stream.Publisher``, optionally with
re-sent duplicates and locally shuffled order, the way real feeds misbehave. Everything is
vectorised with numpy: 500k ticks take about a second to generate.

Market shape (KRX rules since 2023-01-25): 6-digit codes; a previous close per symbol and
the ±30 % daily limits around it; prices on the tick-size grid; an opening-auction print at
09:00:00, continuous trading 09:00–15:20 with a U-shaped intensity (busy open, busier
close), no trades during the closing-auction call 15:20–15:30, and one closing-auction
print at 15:30:00. Session times come from ``tickvault.calendar`` (the first trading day of
the year and the exam day open late); a weekend or holiday is simulated with regular
hours, so the demo works any day. cum_volume is the running day volume per symbol, so the natural key
(symbol, ts, cum_volume) is unique even when one symbol trades several times a second.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.dates import parse_day, today_kst
from ..core.stream import Publisher
from ..core.wire import KST, PRICE_PRECISION, PRICE_SCALE, TICK_SCHEMA, WireEncoder

#: Post-2023 KRX tick sizes for stocks: price < bound -> tick.
TICK_BOUNDS = np.array([2_000, 5_000, 20_000, 50_000, 200_000, 500_000], dtype=np.int64)
TICK_SIZES = np.array([1, 5, 10, 50, 100, 500, 1_000], dtype=np.int64)
PRICE_LIMIT = 0.30

REGULAR_OPEN = time(9, 0)
REGULAR_CLOSE = time(15, 30)
CLOSING_CALL = timedelta(minutes=10)  # closing-auction orders only, no trades, before the close


@dataclass(frozen=True)
class SessionTimes:
    """When the simulated day trades: calendar times on KRX trading days (late opens included)."""

    open: datetime
    close: datetime  # the closing-auction print
    trading_day: bool

    @property
    def continuous_s(self) -> int:
        """Length of continuous trading (open until the closing call) in seconds."""
        return int((self.close - CLOSING_CALL - self.open).total_seconds())

    @property
    def close_s(self) -> int:
        return int((self.close - self.open).total_seconds())


def session_times(day: date) -> SessionTimes:
    """The KRX session of ``day``; a weekend or holiday is simulated with regular hours."""
    from ..core import calendar

    try:
        session = calendar.session(day)
    except ValueError:
        return SessionTimes(datetime.combine(day, REGULAR_OPEN, KST), datetime.combine(day, REGULAR_CLOSE, KST), False)
    return SessionTimes(session.open, session.close, True)


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


def _intensity_cdf(continuous_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF table of the intraday trade intensity (U-shape) over continuous trading."""
    t = np.arange(continuous_s + 1, dtype=np.float64)
    density = 1.0 + 5.0 * np.exp(-t / 900.0) + 2.0 * np.exp(-(continuous_s - t) / 1500.0)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return cdf / cdf[-1], t


@dataclass(frozen=True)
class DayPlan:
    """Per-symbol facts of a simulated day (useful to tests: limits, previous closes)."""

    symbols: list[str]
    prev_close: np.ndarray
    limit_down: np.ndarray
    limit_up: np.ndarray
    ticks_per_symbol: np.ndarray


def plan_day(symbols: int, ticks: int, seed: int, day: date | None = None, prev_close: np.ndarray | None = None) -> DayPlan:
    """The symbols (fixed by ``seed``), their previous closes and how many trades each gets.

    With ``day`` the split of ``ticks`` over the symbols varies by date (busier and quieter
    days per symbol, the Zipf-like ranking kept); ``prev_close`` continues an earlier day."""
    if symbols < 1:
        raise ValueError("--symbols must be at least 1")
    if ticks < 2 * symbols:
        raise ValueError(f"--ticks must be at least 2 per symbol (opening and closing prints): >= {2 * symbols}")
    rng = np.random.default_rng([seed, 1])
    codes = symbol_codes(symbols, rng)
    first_close = snap_to_grid(np.exp(rng.uniform(np.log(1_000), np.log(600_000), size=symbols)))
    prev_close = first_close if prev_close is None else snap_to_grid(prev_close)
    down, up = price_limits(prev_close)
    # Zipf-like activity: a few symbols trade far more than the rest; every symbol gets its two auction prints.
    weights = 1.0 / np.arange(1, symbols + 1) ** 0.8
    weights = rng.permutation(weights)
    if day is not None:
        by_date = np.random.default_rng([seed, 4, day.toordinal()])
        weights = weights * np.exp(by_date.normal(0.0, 0.4, size=symbols))
        rng = by_date
    extra = rng.multinomial(ticks - 2 * symbols, weights / weights.sum())
    return DayPlan(codes, prev_close, down, up, extra + 2)


def generate_days(last_day: date, days: int, symbols: int = 20, ticks: int = 200_000, seed: int = 0,
                  source: str = "sim") -> list[tuple[date, pa.Table]]:
    """``days`` consecutive KRX trading days ending at ``last_day`` (a trading day), behaving like a market:
    each day opens from the previous day's close, and trade counts vary by date (about ``ticks`` a day)
    and by symbol."""
    from ..core import calendar

    if days < 1:
        raise ValueError("--days must be at least 1")
    chosen = [last_day]
    while len(chosen) < days:
        chosen.insert(0, calendar.previous_trading_day(chosen[0]))
    out: list[tuple[date, pa.Table]] = []
    closes: np.ndarray | None = None
    for day in chosen:
        activity = np.random.default_rng([seed, 5, day.toordinal()]).lognormal(0.0, 0.3)
        day_ticks = max(2 * symbols, round(ticks * activity))
        plan = plan_day(symbols, day_ticks, seed, day, closes)
        table = _generate(day, plan, seed, source)
        closes = last_prices(table, plan.symbols)
        out.append((day, table))
    return out


def last_prices(table: pa.Table, symbols: list[str]) -> np.ndarray:
    """Each symbol's last trade price of the day (its close), in ``symbols`` order."""
    ordered = table.sort_by([("symbol", "ascending"), ("cum_volume", "ascending")])
    codes = ordered.column("symbol").to_numpy(zero_copy_only=False)
    prices = ordered.column("price").cast(pa.float64()).to_numpy()
    last = dict(zip(codes, prices))
    return np.array([last[s] for s in symbols], dtype=np.float64)


def generate_day(day: date, symbols: int = 20, ticks: int = 200_000, seed: int = 0, source: str = "sim") -> pa.Table:
    """Every distinct tick of one simulated day, ordered by exchange time (TICK_SCHEMA)."""
    return _generate(day, plan_day(symbols, ticks, seed), seed, source)


def _generate(day: date, plan: DayPlan, seed: int, source: str) -> pa.Table:
    ticks = int(plan.ticks_per_symbol.sum())
    rng = np.random.default_rng([seed, 2, day.toordinal()])
    n_sym = len(plan.symbols)
    counts = plan.ticks_per_symbol
    sym = np.repeat(np.arange(n_sym), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    first = np.zeros(ticks, dtype=bool)
    first[starts] = True
    last = np.zeros(ticks, dtype=bool)
    last[starts + counts - 1] = True

    # Times (float seconds after 09:00): inverse-CDF draws, sorted inside each symbol's segment.
    hours = session_times(day)
    cdf, grid = _intensity_cdf(hours.continuous_s)
    t = np.interp(rng.random(ticks), cdf, grid)
    t = np.minimum(t, hours.continuous_s - 1e-3)
    order = np.lexsort((t, sym))  # sym is already grouped; sort times within each symbol
    t = t[order]
    t[first] = 0.0  # the opening-auction print
    t[last] = hours.close_s  # the closing-auction print

    # Prices: a log random walk per symbol from an opening gap, clipped to the limits, snapped to the grid.
    daily_sigma = rng.uniform(0.008, 0.035, size=n_sym)
    step_sigma = daily_sigma / np.sqrt(np.maximum(counts, 1))
    steps = rng.standard_normal(ticks) * step_sigma[sym]
    steps[first] = rng.standard_normal(n_sym) * 0.01  # the opening auction's gap
    walk = np.cumsum(steps)
    walk -= np.repeat(walk[starts] - steps[starts], counts)  # restart the cumulative sum per symbol
    raw = plan.prev_close[sym] * np.exp(walk)
    price = np.clip(snap_to_grid(raw), plan.limit_down[sym], plan.limit_up[sym])

    # Volumes: lognormal around ~2M KRW per trade; auction prints are much larger.
    median = np.maximum(2_000_000 / price, 1.0)
    volume = np.maximum(np.rint(median * np.exp(rng.standard_normal(ticks) * 1.2)), 1).astype(np.int64)
    auction = first | last
    volume[auction] *= rng.integers(30, 120, size=int(auction.sum()))
    cum_volume = np.cumsum(volume)
    cum_volume -= np.repeat(cum_volume[starts] - volume[starts], counts)

    # Side: the aggressor of an uptick buys, of a downtick sells, otherwise a coin; auctions have none.
    move = np.diff(price, prepend=price[0])
    move[first] = 0
    coin = rng.random(ticks) < 0.5
    buy = np.where(move > 0, True, np.where(move < 0, False, coin))
    side_idx = np.where(buy, 0, 1)

    # Global time order (stable: a symbol's ticks keep their cum_volume order).
    glob = np.lexsort((sym, t))
    sym, t, price, volume, cum_volume, side_idx, auction = (a[glob] for a in (sym, t, price, volume, cum_volume, side_idx, auction))

    base_us = int(hours.open.timestamp()) * 1_000_000
    ts_us = base_us + np.floor(t).astype(np.int64) * 1_000_000
    latency_us = rng.integers(2_000, 60_000, size=ticks)
    received_us = base_us + np.rint(t * 1_000_000).astype(np.int64) + latency_us

    codes = pa.array(plan.symbols, pa.string())
    sides = pa.array(["B", "S"], pa.string())
    columns = [
        pa.array(np.full(ticks, "KRX", dtype=object), pa.string()),
        pa.DictionaryArray.from_arrays(pa.array(sym.astype(np.int32)), codes).cast(pa.string()),
        pa.array(ts_us, pa.int64()).cast(TICK_SCHEMA.field("ts").type),
        pa.array(price, pa.int64()).cast(pa.decimal128(PRICE_PRECISION + 5, PRICE_SCALE)).cast(TICK_SCHEMA.field("price").type),
        pa.array(volume, pa.int64()),
        pa.array(cum_volume, pa.int64()),
        pa.DictionaryArray.from_arrays(pa.array(side_idx.astype(np.int32), mask=auction), sides).cast(pa.string()),
        pa.array(np.full(ticks, source, dtype=object), pa.string()),
        pa.array(received_us, pa.int64()).cast(TICK_SCHEMA.field("received_at").type),
    ]
    return pa.table(columns, schema=TICK_SCHEMA)


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
    entries: int  # stream entries sent (duplicates included)
    distinct: int  # distinct ticks
    seconds: float


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
) -> PublishResult:
    """Send ``table`` through the real publisher; ``pace='realtime'`` keeps exchange-time spacing."""
    if pace not in ("max", "realtime"):
        raise ValueError("pace must be 'max' or 'realtime'")
    order = wire_order(table.num_rows, dup_rate, shuffle_window, seed)
    encoder = WireEncoder(table)
    started = clock.monotonic()
    sent = 0
    for part in _paced_chunks(order, encoder.ts_s, pace, chunk, started, sleep):
        publisher.publish_fields(encoder.fields(int(i)) for i in part)
        sent += len(part)
        if on_progress is not None:
            on_progress(sent, len(order))
    return PublishResult(sent, table.num_rows, clock.monotonic() - started)


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
    ordered = table.sort_by([("symbol", "ascending"), ("ts", "ascending"), ("cum_volume", "ascending")])
    pq.write_table(ordered, str(path), compression="zstd")


def day_of(value: str | date | None, name: str = "--date") -> date:
    """A KST date from any spelling ``core.dates`` accepts (YYYY-MM-DD, YYYYMMDD, today, -3d), default today."""
    if value is None:
        return today_kst()
    if isinstance(value, date):
        return value
    return parse_day(value, name=name)


def describe(table: pa.Table) -> Mapping[str, object]:
    """A few facts for the CLI summary."""
    ts = table.column("ts")
    return {
        "ticks": table.num_rows,
        "symbols": len(pc.unique(table.column("symbol"))),
        "first_ts": pc.min(ts).as_py().astimezone(KST).isoformat() if table.num_rows else None,
        "last_ts": pc.max(ts).as_py().astimezone(KST).isoformat() if table.num_rows else None,
    }


__all__ = [
    "DayPlan",
    "PublishResult",
    "day_of",
    "generate_day",
    "generate_days",
    "last_prices",
    "plan_day",
    "price_limits",
    "publish",
    "session_times",
    "snap_to_grid",
    "tick_size",
    "wire_order",
    "write_truth",
]
