"""Dates as people type them: ``2026-11-27``, ``20261127`` (every Korean broker API's format),
``today``, ``yesterday`` and ``-3d`` (three days before today), all KST calendar dates.

One parser for every command and the query API, so a date that works in one place works in all.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from .errors import QueryError
from .wire import KST

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_RELATIVE = re.compile(r"^-(\d{1,5})d$")
HELP = "use YYYY-MM-DD, YYYYMMDD, today, yesterday or -Nd (N days ago), KST"


def today_kst(now: datetime | None = None) -> date:
    """Today's KST calendar date (of ``now``, default the system clock)."""
    return (now or datetime.now(KST)).astimezone(KST).date()


def looks_like_day(text: str) -> bool:
    """True when ``text`` is one of the date spellings (not an instant like 2026-11-27T09:00)."""
    raw = text.strip().lower()
    return bool(_ISO.match(raw) or _COMPACT.match(raw) or _RELATIVE.match(raw) or raw in ("today", "yesterday"))


def parse_day(text: str, *, name: str = "date", now: datetime | None = None) -> date:
    """One KST calendar date from any accepted spelling; anything else is a QueryError naming ``name``."""
    raw = str(text).strip().lower()
    if raw == "today":
        return today_kst(now)
    if raw == "yesterday":
        return today_kst(now) - timedelta(days=1)
    relative = _RELATIVE.match(raw)
    if relative:
        return today_kst(now) - timedelta(days=int(relative.group(1)))
    match = _ISO.match(raw) or _COMPACT.match(raw)
    if match:
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError as exc:
            raise QueryError(f"{name}: {text!r} is not a real date ({exc}); {HELP}") from None
    raise QueryError(f"{name}: {text!r} is not a date: {HELP}")
