"""What a continuity check finds, as dataclasses with a stable JSON form (`tickvault.verify/1`).

The recovery planner consumes this: keep field names and meanings stable; add fields, never
rename them. docs/sync.md documents the JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

VERIFY_FORMAT = "tickvault.verify/1"
UTC = UTC


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Gap:
    """A break in one symbol's cumulative volume: trades between two stored ticks are missing.

    The missing trades have ``start_cum_volume < cum_volume <= end_cum_volume - end_volume`` and
    ``start_ts <= ts <= end_ts``; together they traded exactly ``missing_volume``.
    ``start_ts`` is None when the gap opens the day (the first stored tick is not the first
    trade). ``missing_volume < 0`` means conflicting ticks (two ticks claim the same cumulative
    volume), reported with ``kind="overlap"``.
    """

    symbol: str
    start_ts: datetime | None
    start_cum_volume: int
    end_ts: datetime
    end_cum_volume: int
    end_volume: int
    missing_volume: int
    venue: str = "KRX"  # each venue counts its own cumulative volume

    @property
    def kind(self) -> str:
        return "gap" if self.missing_volume > 0 else "overlap"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start_ts"] = _iso(self.start_ts)
        out["end_ts"] = _iso(self.end_ts)
        out["kind"] = self.kind
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gap:
        return cls(
            symbol=data["symbol"],
            start_ts=_dt(data["start_ts"]),
            start_cum_volume=int(data["start_cum_volume"]),
            end_ts=_dt(data["end_ts"]),  # type: ignore[arg-type]
            end_cum_volume=int(data["end_cum_volume"]),
            end_volume=int(data["end_volume"]),
            missing_volume=int(data["missing_volume"]),
            venue=data.get("venue", "KRX"),
        )


@dataclass(frozen=True)
class Duplicate:
    """A natural key stored more than once in one store."""

    symbol: str
    ts: datetime
    cum_volume: int
    copies: int
    venue: str = "KRX"

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "symbol": self.symbol, "ts": _iso(self.ts), "cum_volume": self.cum_volume, "copies": self.copies}


@dataclass(frozen=True)
class MinuteStats:
    """Fingerprint of one (symbol, minute) in one store."""

    ticks: int
    volume: int
    max_cum_volume: int
    checksum: int

    def to_dict(self) -> dict[str, Any]:
        # the checksum can exceed 2**53: a string keeps it exact for JSON readers
        return {"ticks": self.ticks, "volume": self.volume, "max_cum_volume": self.max_cum_volume, "checksum": str(self.checksum)}


@dataclass(frozen=True)
class MinuteDiff:
    """A (venue, symbol, minute) whose fingerprint differs between hot and cold (None: no ticks there)."""

    symbol: str
    minute: datetime
    hot: MinuteStats | None
    cold: MinuteStats | None
    venue: str = "KRX"

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "minute": _iso(self.minute),
            "hot": self.hot.to_dict() if self.hot else None,
            "cold": self.cold.to_dict() if self.cold else None,
        }


@dataclass(frozen=True)
class OffSession:
    """Ticks of one (venue, symbol) stamped outside every session of their venue: stored, and flagged."""

    venue: str
    symbol: str
    ticks: int
    first_ts: datetime
    last_ts: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "symbol": self.symbol, "ticks": self.ticks, "first_ts": _iso(self.first_ts), "last_ts": _iso(self.last_ts)}


@dataclass
class StoreCheck:
    """Continuity and duplicates of one store for the day."""

    store: str  # "hot" or "cold"
    ticks: int = 0
    volume: int = 0
    symbols: int = 0
    gaps: list[Gap] = field(default_factory=list)  # kind "gap" and "overlap"
    duplicates: int = 0  # extra copies of natural keys
    duplicate_samples: list[Duplicate] = field(default_factory=list)
    error: str | None = None  # the store could not be read (the check is then not consistent)

    @property
    def consistent(self) -> bool:
        return self.error is None and not self.gaps and self.duplicates == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "consistent": self.consistent,
            "ticks": self.ticks,
            "volume": self.volume,
            "symbols": self.symbols,
            "gaps": [g.to_dict() for g in self.gaps],
            "missing_volume": sum(g.missing_volume for g in self.gaps if g.missing_volume > 0),
            "duplicates": self.duplicates,
            "duplicate_samples": [d.to_dict() for d in self.duplicate_samples],
            "error": self.error,
        }


@dataclass
class VerifyReport:
    """Result of ``verify``: consistent only if every checked store is gap- and duplicate-free
    and (source "both") hot and cold hold the same ticks."""

    day: date
    source: str  # "hot", "cold" or "both"
    symbols: list[str] | None
    stores: dict[str, StoreCheck]
    gaps: list[Gap]  # gaps of the data as a whole: of the union of the stores checked
    differences: list[MinuteDiff] = field(default_factory=list)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: a trading day checked whole on which no store checked holds a single tick: nothing is proven
    no_ticks: bool = False
    #: (venue, symbol) pairs of the day's universe (``read_universe``) without a tick in any store checked
    silent: list[tuple[str, str]] = field(default_factory=list)
    #: the day's (venue, symbol) universe as recorded; None when none was (then only series with ticks are checked)
    universe: list[tuple[str, str]] | None = None
    #: ticks outside every session of their venue (flagged, they do not make the day inconsistent)
    out_of_session: list[OffSession] = field(default_factory=list)
    #: (venue, symbol) series with ticks in any store checked, for the per-venue summary
    series: set[tuple[str, str]] = field(default_factory=set)

    @property
    def consistent(self) -> bool:
        return self.stores_agree and not self.no_ticks and not self.silent

    @property
    def stores_agree(self) -> bool:
        """Every store is readable and clean and hot == cold: what remains is only "not proven"."""
        return all(s.consistent for s in self.stores.values()) and not self.differences and not self.gaps

    def venues(self) -> dict[str, dict[str, Any]]:
        """Per venue: series expected (universe) and seen, gaps and exact missing volume, flags."""
        names = sorted({v for v, _ in self.series} | {v for v, _ in self.universe or []} | {g.venue for g in self.gaps})
        out: dict[str, dict[str, Any]] = {}
        for venue in names:
            gaps = [g for g in self.gaps if g.venue == venue and g.missing_volume > 0]
            off = [o for o in self.out_of_session if o.venue == venue]
            silent = [s for v, s in self.silent if v == venue]
            out[venue] = {
                "series": sum(1 for v, _ in self.series if v == venue),
                "universe": None if self.universe is None else sum(1 for v, _ in self.universe if v == venue),
                "silent": silent,
                "gaps": len(gaps),
                "missing_volume": sum(g.missing_volume for g in gaps),
                "differences": sum(1 for d in self.differences if d.venue == venue),
                "out_of_session_ticks": sum(o.ticks for o in off),
                "complete": not gaps and not silent and not any(d.venue == venue for d in self.differences),
            }
        return out

    @property
    def missing_volume(self) -> int:
        return sum(g.missing_volume for g in self.gaps if g.missing_volume > 0)

    def reasons(self) -> list[str]:
        """Short operator-readable reasons why the day is not consistent."""
        out: list[str] = []
        for s in self.stores.values():
            if s.error:
                out.append(f"{s.store} store unreadable: {s.error}")
            real = [g for g in s.gaps if g.missing_volume > 0]
            if real:
                out.append(f"{s.store}: {len(real)} gap(s), {sum(g.missing_volume for g in real)} volume missing")
            if len(real) != len(s.gaps):
                out.append(f"{s.store}: {len(s.gaps) - len(real)} overlapping tick(s)")
            if s.duplicates:
                out.append(f"{s.store}: {s.duplicates} duplicate tick(s)")
        if self.differences:
            out.append(f"hot and cold differ in {len(self.differences)} minute(s)")
        for venue, facts in self.venues().items():
            if facts["missing_volume"]:
                out.append(f"{venue}: {facts['gaps']} gap(s), {facts['missing_volume']} volume missing")
        if self.no_ticks:
            out.append(f"not proven: {self.day} is a trading day and no store checked holds a tick of it")
        if self.silent:
            names = ", ".join(f"{venue}:{symbol}" for venue, symbol in self.silent[:5])
            out.append(f"not proven: {len(self.silent)} (venue, symbol) of the day's universe without a tick ({names})")
        return out

    def flags(self) -> list[str]:
        """What is stored but suspicious (does not make the day inconsistent): ticks outside every session."""
        out = []
        for venue in sorted({o.venue for o in self.out_of_session}):
            mine = [o for o in self.out_of_session if o.venue == venue]
            out.append(f"{venue}: {sum(o.ticks for o in mine)} tick(s) of {len(mine)} symbol(s) outside every {venue} session")
        if self.universe is None:
            out.append("no universe recorded for the day: only the series that have ticks were checked")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": VERIFY_FORMAT,
            "date": self.day.isoformat(),
            "source": self.source,
            "symbols": self.symbols,
            "consistent": self.consistent,
            "reasons": self.reasons(),
            "checked_at": _iso(self.checked_at),
            "missing_volume": self.missing_volume,
            "gaps": [g.to_dict() for g in self.gaps],
            "stores": {name: s.to_dict() for name, s in self.stores.items()},
            "differences": [d.to_dict() for d in self.differences],
            "no_ticks": self.no_ticks,
            "silent": [{"venue": venue, "symbol": symbol} for venue, symbol in self.silent],
            "venues": self.venues(),
            "universe_recorded": self.universe is not None,
            "out_of_session": [o.to_dict() for o in self.out_of_session],
            "flags": self.flags(),
        }

    @staticmethod
    def gaps_from_dict(data: dict[str, Any]) -> list[Gap]:
        """The union gap list of a parsed `tickvault verify --json` document."""
        if data.get("format") != VERIFY_FORMAT:
            raise ValueError(f"not a {VERIFY_FORMAT} document (format={data.get('format')!r})")
        return [Gap.from_dict(g) for g in data["gaps"]]
