"""Broker trades -> ticks: exact where provable, nothing where not (no stores needed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from tickvault.core.wire import KST, UTC
from tickvault.services.brokers.common import BrokerTrade
from tickvault.services.recovery.archive import StoredTick, analyse, merge_windows, window_of
from tickvault.services.recovery.convert import from_anchored, from_exact

T0 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=KST)
NOW = datetime(2026, 11, 20, 7, 10, tzinfo=UTC)

# the truth: (second offset, price, volume); cum volumes follow
TRUTH = [(0, 100, 5), (0, 100, 5), (1, 101, 3), (1, 100, 5), (61, 102, 7), (61, 102, 7), (62, 101, 1), (125, 100, 2)]


def truth_ticks() -> list[StoredTick]:
    out, cum = [], 0
    for sec, px, vol in TRUTH:
        cum += vol
        out.append(StoredTick(T0 + timedelta(seconds=sec), Decimal(px), vol, cum))
    return out


def trades(with_cum: bool) -> list[BrokerTrade]:
    return [BrokerTrade(t.ts, t.price, t.volume, t.cum_volume if with_cum else None) for t in truth_ticks()]


def test_gaps_are_found_with_exact_missing_volume():
    ticks = truth_ticks()
    archive = analyse("005930", [ticks[0], ticks[2], ticks[3], ticks[6], ticks[7]])
    assert [(r.lo, r.hi, r.volume) for r in archive.missing] == [(5, 10, 5), (18, 32, 14)]
    windows = merge_windows([window_of(r, T0.replace(hour=0, minute=0)) for r in archive.missing])
    assert windows == [(T0, T0 + timedelta(minutes=2))]


def test_exact_fills_only_the_holes():
    ticks = truth_ticks()
    archive = analyse("005930", [ticks[0], ticks[2], ticks[3], ticks[6], ticks[7]])
    out = from_exact(archive, trades(True), NOW)
    assert [(t.cum_volume, t.volume) for t in out.ticks] == [(10, 5), (25, 7), (32, 7)]
    assert out.mismatches == 0 and out.reason is None
    assert all(t.source == "recovery" for t in out.ticks)


def test_exact_leaves_out_trades_that_contradict_the_archive():
    ticks = truth_ticks()
    archive = analyse("005930", [ticks[0], ticks[2], ticks[3], ticks[6], ticks[7]])
    wrong = trades(True)
    wrong[2] = BrokerTrade(wrong[2].ts, Decimal(999), wrong[2].volume, wrong[2].cum_volume)  # disagrees with a stored tick
    wrong.append(BrokerTrade(T0, Decimal(100), 4, 4))  # a "trade" inside a stored tick's volume
    out = from_exact(archive, wrong, NOW)
    assert [t.cum_volume for t in out.ticks] == [10, 25, 32]
    assert out.mismatches == 2 and "contradict" in (out.reason or "")


def test_anchored_rebuilds_cum_volume_exactly():
    ticks = truth_ticks()
    archive = analyse("005930", [ticks[0], ticks[1], ticks[2], ticks[4], ticks[7]])  # 10:00:01 and 10:01:02 partly missing
    since = T0  # a minute start where the archive is continuous (nothing before it)
    out = from_anchored(archive, trades(False), since, NOW)
    assert out.reason is None
    assert [(t.ts.astimezone(KST), t.cum_volume, t.volume) for t in out.ticks] == [
        (ticks[3].ts, ticks[3].cum_volume, 5), (ticks[5].ts, ticks[5].cum_volume, 7), (ticks[6].ts, ticks[6].cum_volume, 1)]


def test_anchored_from_a_later_minute_uses_the_stored_cumulative_volume():
    ticks = truth_ticks()
    archive = analyse("005930", ticks[:5] + ticks[6:])  # only 10:01:01's second trade missing
    since = T0 + timedelta(minutes=1)
    later = [t for t in trades(False) if t.ts >= T0 + timedelta(seconds=59)]  # the broker pages back a little past since
    out = from_anchored(archive, later, since, NOW)
    assert [(t.cum_volume, t.volume) for t in out.ticks] == [(ticks[5].cum_volume, 7)]


def test_anchored_refuses_when_the_broker_list_does_not_line_up():
    ticks = truth_ticks()
    archive = analyse("005930", [ticks[0], ticks[1], ticks[2], ticks[4], ticks[7]])
    swapped = trades(False)
    swapped[2], swapped[3] = swapped[3], swapped[2]  # the broker lists a second's trades in another order
    out = from_anchored(archive, swapped, T0, NOW)
    assert out.ticks == [] and "does not line up" in (out.reason or "")
    short = trades(False)[:-1]  # the broker lacks the last trade the archive holds
    out = from_anchored(archive, short, T0, NOW)
    assert out.ticks == [] and out.mismatches >= 1


def test_anchored_refuses_without_a_continuous_boundary():
    ticks = truth_ticks()
    archive = analyse("005930", [ticks[0], ticks[3], ticks[4]])  # a hole spanning 10:00:00..10:00:01
    out = from_anchored(archive, trades(False), T0 + timedelta(seconds=1), NOW)
    assert out.ticks == [] and "no exact anchor" in (out.reason or "")
