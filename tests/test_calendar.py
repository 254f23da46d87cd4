"""Calendar facts: KRX trading dates for 2024–2026 (pinned so a `holidays` upgrade that disagrees
fails here) and each venue's sessions from the dated session table, special days included."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest

from tickvault.core import calendar as krx
from tickvault.core.errors import ConfigError, QueryError
from tickvault.core.wire import KST

CLOSED = {
    2024: ["01-01", "02-09", "02-12", "03-01", "04-10", "05-01", "05-06", "05-15", "06-06", "08-15",
           "09-16", "09-17", "09-18", "10-01", "10-03", "10-09", "12-25", "12-31"],
    2025: ["01-01", "01-27", "01-28", "01-29", "01-30", "03-03", "05-01", "05-05", "05-06", "06-03",
           "06-06", "08-15", "10-03", "10-06", "10-07", "10-08", "10-09", "12-25", "12-31"],
    2026: ["01-01", "02-16", "02-17", "02-18", "03-02", "05-01", "05-05", "05-25", "06-03", "07-17",
           "08-17", "09-24", "09-25", "10-05", "10-09", "12-25", "12-31"],
}


@pytest.mark.parametrize("year", sorted(CLOSED))
def test_weekday_closures_match_the_published_krx_calendar(year: int) -> None:
    expected = {date.fromisoformat(f"{year}-{md}") for md in CLOSED[year]}
    d, closed = date(year, 1, 1), set()
    while d.year == year:
        if d.weekday() < 5 and not krx.is_trading_day(d):
            closed.add(d)
        d += timedelta(days=1)
    assert closed == expected


def test_days_exchange_calendars_gets_wrong() -> None:
    assert not krx.is_trading_day(date(2026, 6, 3))  # local elections
    assert not krx.is_trading_day(date(2026, 7, 17))  # Constitution Day, a holiday again from 2026


def test_weekends_never_trade() -> None:
    assert not krx.is_trading_day(date(2026, 11, 21))
    assert not krx.is_trading_day("2026-11-22")
    assert krx.is_trading_day(date(2026, 11, 20))


@pytest.mark.parametrize("day", [date(2024, 1, 2), date(2025, 1, 2), date(2026, 1, 2)])
def test_first_trading_day_of_the_year_opens_at_ten(day: date) -> None:
    assert krx.first_trading_day_of_year(day.year) == day
    s = krx.session(day)
    assert (s.open.astimezone(KST).time(), s.close.astimezone(KST).time()) == (time(10), time(15, 30))
    assert s.late_open


@pytest.mark.parametrize("day", [date(2024, 11, 14), date(2025, 11, 13), date(2026, 11, 19)])
def test_exam_day_opens_and_closes_an_hour_late(day: date) -> None:
    s = krx.session(day)
    assert (s.open.astimezone(KST).time(), s.close.astimezone(KST).time()) == (time(10), time(16, 30))
    assert s.regular_end == datetime.combine(day, time(16, 40), tzinfo=KST)


def test_normal_session() -> None:
    s = krx.session(date(2026, 11, 20))
    assert s.open == datetime(2026, 11, 20, 9, tzinfo=KST)
    assert s.close == datetime(2026, 11, 20, 15, 30, tzinfo=KST)
    assert s.regular_end == datetime(2026, 11, 20, 15, 40, tzinfo=KST)
    assert not s.late_open


def test_session_of_a_holiday_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a KRX trading day"):
        krx.session(date(2026, 7, 17))


def test_trading_days_and_neighbours() -> None:
    assert krx.trading_days("2025-12-29", "2026-01-05") == [
        date(2025, 12, 29), date(2025, 12, 30), date(2026, 1, 2), date(2026, 1, 5)
    ]
    assert krx.next_trading_day(date(2025, 12, 30)) == date(2026, 1, 2)
    assert krx.previous_trading_day(date(2026, 1, 2)) == date(2025, 12, 30)
    assert krx.previous_trading_day(date(2026, 7, 20)) == date(2026, 7, 16)
    assert len(krx.trading_days("2026-01-01", "2026-12-31")) == 365 - 104 - 17


def test_bad_date_text_says_what_to_write() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        krx.is_trading_day("26/01/02")


# --- sessions per venue (sessions.toml) ---------------------------------------------------

OLD_EXAM_DAYS = {
    date(2015, 11, 12), date(2016, 11, 17), date(2017, 11, 23), date(2018, 11, 15), date(2019, 11, 14),
    date(2020, 12, 3), date(2021, 11, 18), date(2022, 11, 17), date(2023, 11, 16), date(2024, 11, 14),
    date(2025, 11, 13), date(2026, 11, 19),
}


def at(day: date, hhmmss: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmmss), tzinfo=KST)


def table_of(day: date, venue: str) -> list[tuple[str, str, str, str]]:
    """(name, kind, start, end) of a venue's day, times as HH:MM[:SS] text."""
    def text(ts: datetime) -> str:
        t = ts.astimezone(KST).time()
        return t.strftime("%H:%M:%S" if t.second else "%H:%M")

    return [(w.name, w.kind, text(w.start), text(w.end)) for w in krx.sessions(day, venue)]


KRX_BEFORE_2026 = [
    ("pre_market_close", "pre", "08:30", "08:40"),
    ("opening_auction", "auction", "08:30", "09:00"),
    ("continuous", "continuous", "09:00", "15:20"),
    ("closing_auction", "closing_auction", "15:20", "15:30"),
    ("post_market_close", "post", "15:40", "16:00"),
    ("after_hours_single_price", "single_price", "16:00", "18:00"),
]
KRX_EXTENDED = [
    ("pre_market", "pre", "07:00", "08:00"),
    ("pre_market_close", "pre", "08:30", "08:40"),
    ("opening_auction", "auction", "08:30", "09:00"),
    ("continuous", "continuous", "09:00", "15:20"),
    ("closing_auction", "closing_auction", "15:20", "15:30"),
    ("post_market_close", "post", "15:40", "16:00"),
    ("after_market", "after", "16:00", "20:00"),
]
NXT_REGULAR = [
    ("pre_market", "pre", "08:00", "08:50"),
    ("main_market", "continuous", "09:00:30", "15:20"),
    ("after_market_book", "auction", "15:30", "15:40"),
    ("after_market", "after", "15:40", "20:00"),
]


def test_session_answers_are_unchanged_for_every_krx_trading_day() -> None:
    """The regular session derived from the table equals the rule the code used to hard-wire."""
    for day in krx.trading_days("2015-01-01", "2027-12-31"):
        late = day in OLD_EXAM_DAYS or day == krx.first_trading_day_of_year(day.year)
        shift = timedelta(hours=1) if day in OLD_EXAM_DAYS else timedelta(0)
        expected_open = at(day, "10:00") if late else at(day, "09:00")
        expected_close = at(day, "15:30") + shift
        s = krx.session(day)
        assert (s.day, s.open, s.close, s.regular_end, s.late_open) == (
            day, expected_open, expected_close, expected_close + timedelta(minutes=10), late
        ), day


def test_the_table_ships_and_loads() -> None:
    table = krx.session_table()
    assert table.version >= 1
    assert {r.venue for r in table.rules} == set(krx.VENUES)
    assert table.exam_days >= OLD_EXAM_DAYS


def test_every_rule_and_special_day_is_well_formed() -> None:
    """Checked here independently of the loader: start < end, overlaps declared, trades disjoint."""
    for rule in krx.session_table().rules:
        for day_kind, plan in rule.plans.items():
            rows = plan.sessions
            assert rows, (rule.name, day_kind)
            for s in rows:
                assert timedelta(0) <= s.start < s.end <= timedelta(hours=24), (rule.name, day_kind, s.name)
                assert s.kind in krx.SESSION_KINDS
            for i, a in enumerate(rows):
                for b in rows[i + 1:]:
                    if a.start < b.end and b.start < a.end:
                        assert b.name in a.overlaps or a.name in b.overlaps, (rule.name, day_kind, a.name, b.name)
                    if a.trades and b.trades:
                        assert a.trades[1] <= b.trades[0] or b.trades[1] <= a.trades[0], (rule.name, a.name, b.name)


@pytest.mark.parametrize("rule", krx.session_table().rules, ids=lambda r: r.name)
def test_each_rule_starts_on_its_effective_date(rule: krx.SessionRule) -> None:
    first = rule.effective_from if krx.is_trading_day(rule.effective_from) else krx.next_trading_day(rule.effective_from)
    table = krx.session_table()
    assert table.rule(first, rule.venue) is rule
    if rule.effective_from.year > krx.FIRST_YEAR:
        assert table.rule(krx.previous_trading_day(rule.effective_from), rule.venue) is not rule


def test_krx_before_and_after_the_2026_extension() -> None:
    before, after = date(2026, 6, 26), date(2026, 6, 29)  # the go-live date is [U]; see sessions.toml
    assert table_of(before, "KRX") == KRX_BEFORE_2026
    assert table_of(after, "KRX") == KRX_EXTENDED
    assert krx.in_session(at(before, "07:30"), "KRX") is None
    assert krx.in_session(at(after, "07:30"), "KRX").name == "pre_market"
    assert krx.in_session(at(before, "19:00"), "KRX") is None
    assert krx.in_session(at(after, "19:59:59"), "KRX").name == "after_market"
    assert krx.venue_close(before, "KRX") == at(before, "18:10")  # last single-price match + grace
    assert krx.venue_close(after, "KRX") == at(after, "20:00")
    assert krx.trading_hours(after, "KRX") == (at(after, "07:00"), at(after, "20:00"))
    assert any("go-live" in note for note in krx.unconfirmed(after, "KRX"))


def test_nxt_does_not_exist_before_its_launch() -> None:
    before, launch = date(2025, 2, 28), date(2025, 3, 4)
    assert not krx.venue_active(before, "NXT") and krx.sessions(before, "NXT") == []
    assert krx.in_session(at(before, "10:00"), "NXT") is None
    with pytest.raises(QueryError, match="NXT has no session rule"):
        krx.venue_close(before, "NXT")
    assert krx.venue_active(launch, "NXT") and table_of(launch, "NXT") == NXT_REGULAR
    assert krx.venue_close(launch, "NXT") == at(launch, "20:00")
    assert krx.collect_window(before) == (at(before, "08:30"), at(before, "18:10"))
    assert krx.collect_window(launch) == (at(launch, "08:00"), at(launch, "20:00"))
    assert krx.collect_window(date(2026, 6, 29)) == (at(date(2026, 6, 29), "07:00"), at(date(2026, 6, 29), "20:00"))


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("07:59:59", None), ("08:00", "pre_market"), ("08:49:59", "pre_market"),
        ("08:50", None), ("08:59:59", None), ("09:00", None), ("09:00:29", None),  # quiet: KRX opening auction
        ("09:00:30", "main_market"), ("15:19:59", "main_market"),
        ("15:20", None), ("15:30", None), ("15:39:59", None),  # quiet: KRX close, then the after-market book
        ("15:40", "after_market"), ("19:59:59", "after_market"), ("20:00", None),
    ],
)
def test_nxt_sessions_and_quiet_windows(ts: str, expected: str | None) -> None:
    window = krx.in_session(at(date(2025, 9, 10), ts), "NXT")
    assert (window.name if window else None) == expected


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("08:29:59", None), ("08:30", "pre_market_close"), ("08:40", None),  # opening auction: orders only
        ("09:00", "continuous"), ("15:19:59", "continuous"),
        ("15:20", None), ("15:29:59", None),  # closing auction orders: no trades yet
        ("15:30", "closing_auction"), ("15:34:59", "closing_auction"), ("15:39:59", "closing_auction"),
        ("15:40", "post_market_close"), ("15:59:59", "post_market_close"),
        ("16:00", "after_hours_single_price"), ("18:00", "after_hours_single_price"), ("18:10", None),
    ],
)
def test_krx_in_session_edges(ts: str, expected: str | None) -> None:
    window = krx.in_session(at(date(2025, 9, 10), ts), "KRX")
    assert (window.name if window else None) == expected


def test_in_session_takes_any_time_zone_and_refuses_naive() -> None:
    from tickvault.core.wire import UTC

    assert krx.in_session(datetime(2025, 9, 10, 0, 0, tzinfo=UTC), "KRX").name == "continuous"  # 09:00 KST
    assert krx.in_session(datetime(2025, 9, 10, 0, 0, tzinfo=UTC), "nxt") is None
    with pytest.raises(QueryError, match="aware datetime"):
        krx.in_session(datetime(2025, 9, 10, 9, 0), "KRX")
    with pytest.raises(QueryError, match="KRX, NXT"):
        krx.sessions(date(2025, 9, 10), "NYSE")  # type: ignore[arg-type]


def test_every_trade_window_starts_inclusive_and_ends_exclusive() -> None:
    for day in krx.trading_days("2025-11-10", "2026-07-03") + [date(2026, 11, 19), date(2027, 1, 4)]:
        for venue in krx.VENUES:
            for w in krx.sessions(day, venue):
                if w.trades_start is None:
                    assert w.kind == "auction"
                    continue
                assert krx.in_session(w.trades_start, venue) == w
                assert krx.in_session(w.trades_end - timedelta(seconds=1), venue) == w
                assert krx.in_session(w.trades_end, venue) != w


def test_first_trading_day_for_both_venues() -> None:
    day = date(2026, 1, 2)
    assert krx.day_type(day) == "first_trading_day"
    assert table_of(day, "KRX") == [
        ("pre_market_close", "pre", "09:30", "09:40"),
        ("opening_auction", "auction", "09:30", "10:00"),
        ("continuous", "continuous", "10:00", "15:20"),
        *KRX_BEFORE_2026[3:],  # the close and the sessions after it are unchanged
    ]
    assert table_of(day, "NXT") == [("main_market", "continuous", "10:00:30", "15:20"), *NXT_REGULAR[2:]]
    assert krx.in_session(at(day, "08:30"), "NXT") is None  # no pre-market
    assert krx.in_session(at(day, "10:00:15"), "NXT") is None
    assert krx.collect_window(day) == (at(day, "09:30"), at(day, "20:00"))


@pytest.mark.parametrize("day", [date(2025, 11, 13), date(2026, 11, 19)])
def test_exam_day_for_both_venues(day: date) -> None:
    assert krx.day_type(day) == "exam_day"
    krx_day = table_of(day, "KRX")
    assert krx_day[-6:-1] == [
        ("pre_market_close", "pre", "09:30", "09:40"),
        ("opening_auction", "auction", "09:30", "10:00"),
        ("continuous", "continuous", "10:00", "16:20"),
        ("closing_auction", "closing_auction", "16:20", "16:30"),
        ("post_market_close", "post", "16:40", "17:00"),
    ]
    assert table_of(day, "NXT") == [
        ("main_market", "continuous", "10:00", "16:20"),
        ("after_market_book", "auction", "16:20", "16:30"),
        ("after_market", "after", "16:30", "20:00"),
    ]
    assert krx.in_session(at(day, "08:10"), "NXT") is None  # no pre-market on exam day
    assert krx.in_session(at(day, "16:25"), "NXT") is None
    assert krx.in_session(at(day, "16:35"), "KRX").name == "closing_auction"
    assert krx.venue_close(day, "NXT") == at(day, "20:00")


def test_exam_day_2025_after_hours_single_price_still_ends_at_18() -> None:
    day = date(2025, 11, 13)
    assert table_of(day, "KRX")[-1] == ("after_hours_single_price", "single_price", "17:00", "18:00")
    assert krx.in_session(at(day, "16:59:59"), "KRX").name == "post_market_close"


def test_exam_day_2026_under_the_extension() -> None:
    day = date(2026, 11, 19)
    assert table_of(day, "KRX")[0] == ("pre_market", "pre", "07:00", "08:00")
    assert table_of(day, "KRX")[-1] == ("after_market", "after", "17:00", "20:00")
    assert any("exam day" in note for note in krx.unconfirmed(day, "KRX"))


@pytest.mark.parametrize("day", [date(2025, 12, 31), date(2026, 7, 17), date(2026, 11, 21)])
def test_closed_days_have_no_sessions_on_any_venue(day: date) -> None:
    for venue in krx.VENUES:
        assert krx.sessions(day, venue) == [] and not krx.venue_active(day, venue)
        with pytest.raises(QueryError, match=f"not a {venue} trading day"):
            krx.trading_hours(day, venue)
    with pytest.raises(QueryError, match="no venue trades"):
        krx.collect_window(day)


# --- a malformed table is refused with the row named --------------------------------------

MINIMAL = """
version = 1
exam_days = [2025-11-13]

[[rule]]
venue = "KRX"
name = "k"
effective_from = 1990-01-01
sessions = [
    { name = "open", kind = "auction", start = "08:30", end = "09:00" },
    { name = "cont", kind = "continuous", start = "09:00", end = "15:20" },
    { name = "close", kind = "closing_auction", start = "15:20", end = "15:30", match_grace_minutes = 10 },
]

[[rule]]
venue = "NXT"
name = "n"
effective_from = 2025-03-04
sessions = [{ name = "main", kind = "continuous", start = "09:00:30", end = "15:20" }]

[rule.exam_day]
move = { main = ["10:00", "16:20"] }
"""


def test_the_minimal_table_parses() -> None:
    table = krx.parse_session_table(MINIMAL)
    nxt = table.rule(date(2025, 11, 13), "NXT")
    assert nxt is not None and nxt.plans["exam_day"].sessions[0].start == timedelta(hours=10)
    assert table.rule(date(2025, 3, 3), "NXT") is None


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ('end = "15:20" },\n    { name = "close"', 'end = "08:00" },\n    { name = "close"', "start 9:00:00 must be before end 8:00:00"),
        ('name = "open", kind = "auction", start = "08:30", end = "09:00"', 'name = "open", kind = "auction", start = "08:30", end = "09:30"', "'open' and 'cont' overlap"),  # noqa: E501
        ('kind = "auction"', 'kind = "call"', "kind 'call'"),
        ('venue = "NXT"', 'venue = "XYZ"', "venue 'XYZ'"),
        ('start = "08:30"', 'start = "8:30"', "HH:MM"),
        ('start = "08:30"', 'start = "08:61"', "does not exist"),
        ('move = { main', 'move = { mian', "no session named 'mian'"),
        ('end = "15:20" }]', 'end = "15:20", match_grace_minutes = 5 }]', "match_grace_minutes only applies"),
        ('kind = "closing_auction"', 'kind = "single_price"', "exactly one closing_auction"),
        ('name = "n"\neffective_from = 2025-03-04', 'name = "n"\neffective_from = 2025-03-04\neffective_to = 2025-01-01', "before effective_from"),
        ('name = "k"\neffective_from = 1990-01-01', 'name = "k"\neffective_from = 2000-01-01', "must start by 1990-01-01"),
        ('effective_from = 2025-03-04', 'effective_from = "2025-03-04"', "not a date"),
        ('move = { main = ["10:00", "16:20"] }', 'move = { main = ["10:00", "16:20"] }\nshift = 60', "unknown key(s) shift"),
        ('version = 1', 'version = "one"', "whole number"),
        ('{ name = "cont"', '{ name = "open"', "session names repeat: open"),
        ('end = "09:00" }', 'end = "09:00", overlaps = ["pre"] }', "overlaps names unknown session(s) pre"),
        ('kind = "auction", start = "08:30", end = "09:00" }', 'kind = "pre", start = "08:30", end = "09:30", overlaps = ["cont"] }', "stamped in the same instant"),  # noqa: E501
        ('[[rule]]\nvenue = "NXT"', '[rule.first_trading_day]\nshift_minutes = 900\n\n[[rule]]\nvenue = "NXT"', "runs past midnight"),
    ],
)
def test_a_malformed_table_is_refused(old: str, new: str, complaint: str) -> None:
    assert old in MINIMAL
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        krx.parse_session_table(MINIMAL.replace(old, new, 1))


def test_rules_of_one_venue_may_not_overlap_in_time() -> None:
    later = '\n[[rule]]\nvenue = "NXT"\nname = "n2"\neffective_from = 2026-01-05\nsessions = [{ name = "main", kind = "continuous", start = "09:00", end = "15:20" }]\n'  # noqa: E501
    table = krx.parse_session_table(MINIMAL + later)
    assert table.rule(date(2026, 1, 2), "NXT").name == "n" and table.rule(date(2026, 1, 5), "NXT").name == "n2"
    overlapping = MINIMAL.replace('effective_from = 2025-03-04', 'effective_from = 2025-03-04\neffective_to = 2026-01-05')
    with pytest.raises(ConfigError, match="runs into 'n2'"):
        krx.parse_session_table(overlapping + later)
    ended = MINIMAL.replace('effective_from = 2025-03-04', 'effective_from = 2025-03-04\neffective_to = 2025-12-31')
    assert krx.parse_session_table(ended).rule(date(2026, 1, 2), "NXT") is None  # a venue can stop


def test_two_rules_of_one_venue_may_not_start_the_same_day() -> None:
    twin = '\n[[rule]]\nvenue = "NXT"\nname = "n2"\neffective_from = 2025-03-04\nsessions = [{ name = "main", kind = "continuous", start = "09:00", end = "15:20" }]\n'  # noqa: E501
    with pytest.raises(ConfigError, match="starts the same day as 'n'"):
        krx.parse_session_table(MINIMAL + twin)


def test_a_special_day_may_drop_a_session_another_one_overlaps() -> None:
    text = MINIMAL.replace('end = "09:00" }', 'end = "09:00", overlaps = ["pre"] },\n    { name = "pre", kind = "pre", start = "08:30", end = "08:40" }')
    text = text.replace('[[rule]]\nvenue = "NXT"', '[rule.first_trading_day]\ndrop = ["pre"]\n\n[[rule]]\nvenue = "NXT"')
    rule = krx.parse_session_table(text).rule(date(2026, 1, 2), "KRX")
    assert [s.name for s in rule.plans["first_trading_day"].sessions] == ["open", "cont", "close"]
    assert [s.name for s in rule.plans["regular"].sessions] == ["pre", "open", "cont", "close"]
