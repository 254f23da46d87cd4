"""Which (venue, symbol) pairs a collector subscribes, on which session, and which it cannot.

Brokers cap real-time registrations (KIS: about 41 per app key, one session each; Kiwoom:
one REG list per session) and a symbol traded on both venues costs two. The plan fills the
sessions KRX pairs first (every configured symbol's home market), then NXT pairs, and lists
every pair left out with its reason: the start-up log says it, the ``uncovered`` gauge
counts it, nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.wire import VENUES, Venue
from .base import FatalCollectorError, Pair


@dataclass(frozen=True)
class SubscriptionPlan:
    broker: str
    sessions: list[list[Pair]]  # one list per session (KIS: per app key)
    uncovered: list[tuple[Pair, str]] = field(default_factory=list)  # pair, why

    @property
    def covered(self) -> list[Pair]:
        return [pair for session in self.sessions for pair in session]

    def as_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "covered": [f"{v}:{s}" for v, s in self.covered],
            "sessions": [len(s) for s in self.sessions],
            "uncovered": [{"pair": f"{v}:{s}", "reason": why} for (v, s), why in self.uncovered],
        }

    def summary(self) -> str:
        """One line for the start-up log: counts per venue covered and not."""
        parts = []
        for venue in VENUES:
            have = sum(1 for v, _ in self.covered if v == venue)
            miss = sum(1 for (v, _), _why in self.uncovered if v == venue)
            if have or miss:
                parts.append(f"{venue} {have} covered" + (f", {miss} NOT covered" if miss else ""))
        return f"{self.broker}: {'; '.join(parts) or 'nothing to subscribe'} on {len(self.sessions)} session(s)"


def wanted_pairs(symbols: Sequence[str], venues: Collection[Venue], universe: Collection[Pair] | None) -> tuple[list[Pair], list[tuple[Pair, str]]]:
    """The pairs to subscribe for the configured ``symbols``: KRX for each (every symbol is
    KRX-listed), NXT for those the day's ``universe`` lists on NXT. A symbol the universe
    does not know (or no universe at all) cannot be placed on NXT: its NXT pair comes back
    as uncovered, with the fix."""
    unique = list(dict.fromkeys(symbols))
    pairs: list[Pair] = [("KRX", s) for s in unique] if "KRX" in venues else []
    uncovered: list[tuple[Pair, str]] = []
    if "NXT" in venues:
        listed = set(universe or ())
        known = {s for _v, s in listed}
        for s in unique:
            if ("NXT", s) in listed:
                pairs.append(("NXT", s))
            elif s not in known:
                uncovered.append((("NXT", s), "not in the day's universe (NXT status unknown): run `tickvault collect universe`"))
    return pairs, uncovered


def plan_subscriptions(broker: str, pairs: Sequence[Pair], sessions: int, per_session: int, *,
                       nxt_refused: str | None = None, room_hint: str = "",
                       uncovered: Sequence[tuple[Pair, str]] = ()) -> SubscriptionPlan:
    """Fill ``sessions`` sessions of ``per_session`` registrations, KRX pairs first.

    ``nxt_refused``: why this broker account gets no NXT feed at all (paper/mock), so NXT
    pairs are reported instead of being refused one by one at subscription time.
    """
    left_out = list(uncovered)
    ordered = [p for p in dict.fromkeys(pairs) if p[0] == "KRX"] + [p for p in dict.fromkeys(pairs) if p[0] != "KRX"]
    if nxt_refused:  # whatever else kept an NXT pair out, this account gets no NXT at all
        left_out = [(p, nxt_refused if p[0] == "NXT" else why) for p, why in left_out]
        left_out += [(p, nxt_refused) for p in ordered if p[0] == "NXT"]
        ordered = [p for p in ordered if p[0] != "NXT"]
    room = sessions * per_session
    fits, overflow = ordered[:room], ordered[room:]
    left_out += [(p, f"no room: {sessions} session(s) x {per_session} registrations are full{room_hint}") for p in overflow]
    chunks = [fits[i : i + per_session] for i in range(0, len(fits), per_session)]
    plan = SubscriptionPlan(broker, chunks, left_out)
    if not chunks:
        reasons = "; ".join(dict.fromkeys(why for _p, why in left_out)) or "no symbols configured"
        raise FatalCollectorError(f"{broker}: nothing to subscribe ({reasons})")
    return plan
