"""Bar timeframes: ``1s``…``59s``, ``Nm`` (1–480), ``Nh`` (1–8), ``1d``, ``1w``, ``1mo``.

Intraday buckets are anchored at the trading date's session open: 09:00 KST normally, so 1h,
2h and 4h bars start at the open (4h = 09:00–13:00 and 13:00–close incl. the closing auction);
on a late-open day (first trading day of the year, exam day: 10:00) they anchor at 10:00, so
the first bar of the day is always a full bar that starts at the open. Trades before the open
(pre-market) fall into buckets counted backwards from the anchor. Intraday buckets never cross
a KST date, which is why they stop at 8h: a longer bucket would begin on the previous date.
``1d`` is one KST trading date; ``1w`` groups trading dates by ISO week (Mon–Sun) and ``1mo``
by calendar month; their bars are labelled with the period's first trading date (00:00 KST).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from . import calendar as krx
from .errors import QueryError

_TF_RE = re.compile(r"^([1-9][0-9]{0,3})(s|m|h|d|w|mo)$")
MAX_MINUTES = 480
MAX_HOURS = 8
HELP = "use 1s…59s, 1m…480m, 1h…8h, 1d, 1w or 1mo (e.g. 15m; pandas style 15min, 1H, 1D also works)"
#: pandas offset aliases -> the canonical unit (``15min`` -> ``15m``, ``1H`` -> ``1h``, ``1D`` -> ``1d``)
_PANDAS_TF_RE = re.compile(r"^([1-9][0-9]{0,3})?(S|min|Min|MIN|T|H|D|W|W-SUN|W-MON|M|ME|MS)$")
_PANDAS_UNITS = {"S": "s", "min": "m", "Min": "m", "MIN": "m", "T": "m", "H": "h", "D": "d", "W": "w", "W-SUN": "w", "W-MON": "w",
                 "M": "mo", "ME": "mo", "MS": "mo"}


class TimeframeError(QueryError):
    """A timeframe string tickvault cannot make bars for."""


@dataclass(frozen=True, slots=True)
class Timeframe:
    text: str  # canonical spelling, e.g. "15m"
    seconds: int  # bucket width for intraday timeframes; 0 for 1d/1w/1mo
    period: str  # "intraday", "day", "week" or "month"

    @property
    def intraday(self) -> bool:
        return self.period == "intraday"

    @property
    def width(self) -> timedelta:
        if not self.intraday:
            raise TimeframeError(f"{self.text} has no fixed width; it follows trading dates")
        return timedelta(seconds=self.seconds)

    def period_start(self, day: date) -> date:
        """The first trading date of the period (day, ISO week, month) holding trading date ``day``."""
        if self.period == "day" or self.intraday:
            return day
        if self.period == "week":
            first = day - timedelta(days=day.weekday())
        else:
            first = day.replace(day=1)
        return next(krx.iter_trading_days(first, day))

    def __str__(self) -> str:
        return self.text


def canonical_spelling(raw: str) -> str:
    """A pandas-style alias (``15min``, ``1H``, ``1D``, ``5T``) in tickvault's spelling; anything else unchanged."""
    match = _PANDAS_TF_RE.match(raw)
    if match is None:
        return raw
    return f"{match.group(1) or 1}{_PANDAS_UNITS[match.group(2)]}"


def parse_timeframe(text: str | Timeframe) -> Timeframe:
    """``"15m"`` -> Timeframe; anything else raises TimeframeError saying what is accepted."""
    if isinstance(text, Timeframe):
        return text
    raw = canonical_spelling(str(text).strip())
    match = _TF_RE.match(raw)
    if not match:
        raise TimeframeError(f"unknown timeframe {text!r}: {HELP}")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "s":
        if n > 59:
            hint = f"write {n // 60}m for whole minutes" if n % 60 == 0 else HELP
            raise TimeframeError(f"timeframe {raw!r}: seconds go up to 59s; {hint}")
        return Timeframe(raw, n, "intraday")
    if unit == "m":
        if n > MAX_MINUTES:
            raise TimeframeError(f"timeframe {raw!r}: intraday bars go up to {MAX_MINUTES}m (8h); use 1d for daily bars")
        return Timeframe(raw, n * 60, "intraday")
    if unit == "h":
        if n > MAX_HOURS:
            raise TimeframeError(f"timeframe {raw!r}: intraday bars go up to {MAX_HOURS}h; use 1d for daily bars")
        return Timeframe(raw, n * 3600, "intraday")
    if n != 1:
        raise TimeframeError(f"timeframe {raw!r}: only 1d, 1w and 1mo are supported above 8h")
    return Timeframe(raw, 0, {"d": "day", "w": "week", "mo": "month"}[unit])
