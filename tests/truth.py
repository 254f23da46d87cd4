"""Candles and bars computed the slow, obvious way in plain Python, independently of the SQL
they check: the test days' sessions and period labels known by heart (no tickvault.core.calendar),
floors by timedelta arithmetic, order by (date, cum_volume), vwap rounded with Decimal."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa

from factories import SESSIONS, SESSIONS_END, SESSIONS_START, at
from tickvault.core.bars import CANDLE_COLUMNS
from tickvault.core.wire import KST, UTC, Tick

WEEK_LABEL = {
    date(2025, 11, 12): date(2025, 11, 10),
    date(2025, 11, 13): date(2025, 11, 10),
    date(2025, 12, 30): date(2025, 12, 29),
    date(2026, 1, 2): date(2025, 12, 29),
    date(2026, 1, 5): date(2026, 1, 5),
}
MONTH_LABEL = {
    date(2025, 11, 12): date(2025, 11, 3),
    date(2025, 11, 13): date(2025, 11, 3),
    date(2025, 12, 30): date(2025, 12, 1),
    date(2026, 1, 2): date(2026, 1, 2),
    date(2026, 1, 5): date(2026, 1, 2),
}


def truth_bars(ticks: list[Tick], tf: str, session: str, start: datetime = SESSIONS_START, end: datetime = SESSIONS_END) -> list[tuple]:
    """Bars computed the slow, obvious way."""
    unit = {"s": 1, "m": 60, "h": 3600}
    groups: dict[tuple[str, datetime], list[tuple[date, Tick]]] = defaultdict(list)
    for t in ticks:
        if not (start <= t.ts < end):
            continue
        local = t.ts.astimezone(KST)
        day = local.date()
        if day not in SESSIONS:
            continue
        open_t, close_t = SESSIONS[day]
        opening, closing = at(day, open_t), at(day, close_t)
        if session == "regular" and not (opening <= local < closing + timedelta(minutes=10)):
            continue
        if tf in ("1d", "1w", "1mo"):
            label = {"1d": day, "1w": WEEK_LABEL[day], "1mo": MONTH_LABEL[day]}[tf]
            bucket = at(label, time(0))
        else:
            width = timedelta(seconds=int(tf[:-1]) * unit[tf[-1]])
            bucket = opening + ((local - opening) // width) * width
        groups[(t.symbol, bucket.astimezone(UTC))].append((day, t))
    rows = []
    for (symbol, bucket), members in sorted(groups.items()):
        members.sort(key=lambda m: (m[0], m[1].cum_volume))
        prices = [m[1].price for m in members]
        volume = sum(m[1].volume for m in members)
        turnover = sum(m[1].price * m[1].volume for m in members)
        vwap = (turnover / Decimal(volume)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        rows.append((bucket, symbol, prices[0], max(prices), min(prices), prices[-1], volume, len(members), turnover, vwap))
    return rows


def as_rows(table: pa.Table) -> list[tuple]:
    """Candle table -> comparable tuples without the venue label (Decimals compare by value:
    62700 == 62700.0000)."""
    cols = table.to_pydict()
    return list(zip(*(cols[name] for name in CANDLE_COLUMNS if name != "venue")))


ORIGIN = datetime(2000, 1, 3, tzinfo=KST)  # buckets start at 00:00 KST (so intraday at 09:00 KST)
WIDTHS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
STORED_CANDLE_COLUMNS = "bucket, venue, symbol, open, high, low, close, volume, trade_count, turnover, vwap, open_cum, close_cum"


def bucket_of(ts: datetime, width: timedelta) -> datetime:
    return ORIGIN + ((ts - ORIGIN) // width) * width


def truth_candles(ticks: list[Tick], level: str) -> dict[tuple[str, str, datetime], tuple]:
    """Plain-Python stored (per-venue) candles, keyed (venue, symbol, bucket): open/close = trade
    with the lowest/highest cum_volume of its venue in the bucket, vwap = turnover / volume
    rounded half-up to 4 places."""
    from decimal import ROUND_HALF_UP, localcontext

    width = WIDTHS[level]
    groups: dict[tuple[str, str, datetime], list[Tick]] = {}
    for t in {t.key: t for t in ticks}.values():
        groups.setdefault((t.venue, t.symbol, bucket_of(t.ts, width)), []).append(t)
    out = {}
    for (venue, symbol, bucket), rows in groups.items():
        rows.sort(key=lambda t: t.cum_volume)
        volume = sum(t.volume for t in rows)
        turnover = sum(t.price * t.volume for t in rows)
        with localcontext() as ctx:
            ctx.prec = 60
            vwap = (turnover / volume).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        out[(venue, symbol, bucket)] = (
            rows[0].price, max(t.price for t in rows), min(t.price for t in rows), rows[-1].price,
            volume, len(rows), turnover, vwap, rows[0].cum_volume, rows[-1].cum_volume,
        )
    return out


def stored_candles(conn, schema: str, level: str) -> dict[tuple[str, str, datetime], tuple]:
    rows = conn.execute(f"SELECT {STORED_CANDLE_COLUMNS} FROM {schema}.candles_{level}").fetchall()
    return {(r[1], r[2], r[0]): tuple(r[3:]) for r in rows}
