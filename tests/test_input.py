"""Input people actually type: dates as YYYYMMDD / today / -3d, pandas-style timeframes, the midnight-end trap."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from click.testing import CliRunner

from tickvault.cli import cli
from tickvault.core.dates import parse_day
from tickvault.core.errors import QueryError
from tickvault.core.timeframe import TimeframeError, parse_timeframe
from tickvault.core.wire import KST
from tickvault.services.api import resolve_range

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=KST)  # a Friday, 01:00 KST (still Thursday in UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-11-20", date(2026, 11, 20)), ("20261120", date(2026, 11, 20)), ("today", date(2026, 11, 27)),
     ("Yesterday", date(2026, 11, 26)), ("-3d", date(2026, 11, 24)), (" 20260102 ", date(2026, 1, 2))],
)
def test_date_spellings(text: str, expected: date) -> None:
    assert parse_day(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["2026-13-01", "20261340", "26-11-20", "3d", "tomorrow", "2026/11/20"])
def test_bad_dates_say_what_is_accepted(text: str) -> None:
    with pytest.raises(QueryError, match=r"YYYYMMDD|not a real date"):
        parse_day(text, now=NOW)


def test_ranges_accept_every_spelling() -> None:
    assert resolve_range("20261120", "today", NOW) == resolve_range("2026-11-20", "2026-11-27")
    assert resolve_range("-1d", None, NOW)[0] == datetime(2026, 11, 26, tzinfo=KST)


@pytest.mark.parametrize(("text", "canonical"), [("15min", "15m"), ("1H", "1h"), ("1D", "1d"), ("5T", "5m"), ("30S", "30s"),
                                                 ("1W", "1w"), ("1M", "1mo"), ("15m", "15m"), ("1mo", "1mo")])
def test_pandas_timeframes_map_to_canonical_names(text: str, canonical: str) -> None:
    assert parse_timeframe(text).text == canonical


def test_60s_keeps_its_helpful_refusal() -> None:
    with pytest.raises(TimeframeError, match="write 1m for whole minutes"):
        parse_timeframe("60s")
    with pytest.raises(TimeframeError, match="up to 8h"):
        parse_timeframe("9H")


def test_a_midnight_instant_as_end_warns_that_the_day_is_excluded() -> None:
    with pytest.warns(UserWarning, match="excludes the day 2026-11-27"):
        resolve_range(date(2026, 11, 26), datetime(2026, 11, 27))
    pd = pytest.importorskip("pandas")
    with pytest.warns(UserWarning, match="excludes the day 2026-11-27"):
        resolve_range("2026-11-26", pd.Timestamp("2026-11-27", tz="Asia/Seoul"))


def test_a_date_end_or_a_non_midnight_instant_does_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    resolve_range("2026-11-26", date(2026, 11, 27))
    resolve_range("2026-11-26", datetime(2026, 11, 27, 15, 30, tzinfo=KST))
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_cli_dates_accept_compact_spelling_and_refuse_garbage_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TICKVAULT_LAKE_DIR", str(tmp_path / "no-lake"))
    bad = CliRunner().invoke(cli, ["compact", "--date", "2026.11.20"])
    assert bad.exit_code == 2 and "YYYYMMDD" in bad.output
    good = CliRunner().invoke(cli, ["compact", "--date", "20261120"])
    assert "is not a date" not in good.output and "YYYYMMDD" not in good.output
