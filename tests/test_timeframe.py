from __future__ import annotations

from datetime import date

import pytest

from tickvault.core.timeframe import TimeframeError, parse_timeframe


@pytest.mark.parametrize(
    ("text", "seconds", "period"),
    [("1s", 1, "intraday"), ("59s", 59, "intraday"), ("1m", 60, "intraday"), ("15m", 900, "intraday"),
     ("480m", 28800, "intraday"), ("1h", 3600, "intraday"), ("4h", 14400, "intraday"), ("8h", 28800, "intraday"),
     ("1d", 0, "day"), ("1w", 0, "week"), ("1mo", 0, "month")],
)
def test_accepted(text: str, seconds: int, period: str) -> None:
    tf = parse_timeframe(text)
    assert (tf.text, tf.seconds, tf.period) == (text, seconds, period)


@pytest.mark.parametrize(
    ("text", "hint"),
    [("60s", "write 1m"), ("0m", "unknown timeframe"), ("15", "unknown timeframe"),
     ("9h", "up to 8h"), ("481m", "up to 480m"), ("2d", "only 1d"), ("3w", "only 1d"), ("1y", "unknown timeframe"),
     ("", "unknown timeframe"), ("-5m", "unknown timeframe")],
)
def test_rejected_with_a_clear_message(text: str, hint: str) -> None:
    with pytest.raises(TimeframeError, match=hint):
        parse_timeframe(text)


def test_rejection_lists_what_is_accepted() -> None:
    with pytest.raises(TimeframeError, match=r"1s…59s, 1m…480m, 1h…8h, 1d, 1w or 1mo"):
        parse_timeframe("fortnight")


def test_period_start_is_the_first_trading_date() -> None:
    week, month = parse_timeframe("1w"), parse_timeframe("1mo")
    assert week.period_start(date(2026, 1, 2)) == date(2025, 12, 29)
    assert month.period_start(date(2026, 1, 5)) == date(2026, 1, 2)
    assert month.period_start(date(2026, 3, 31)) == date(2026, 3, 3)  # 03-02 is a substitute holiday
    assert parse_timeframe("1d").period_start(date(2026, 3, 31)) == date(2026, 3, 31)
