"""Daily recovery: compare the archive with the broker, fetch trades only where they differ.

For one KST date: verify both stores (sync.verify); copy ticks one store lacks from the
other; fetch the broker's minute bars of every archived symbol (a handful of calls per
symbol); the repair set is the union of continuity gaps, minutes whose volume differs
from the broker's bar and the windows the collectors recorded in ``<stream>:gaps`` (whose
symbols are checked even when the archive holds none of their ticks); only for those
windows are the broker's trades fetched (KIS: per window; Kiwoom: one backwards pass per
symbol). Trades become ticks (source
"recovery") only where they fill a proven hole; they go to the lake and, inside the hot
retention, to the hot store. Idempotent: a second run finds nothing to do and only
re-reads the minute bars.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import redis

from ...core import calendar
from ...core.calendar import trading_date, trading_day_bounds
from ...core.config import Settings
from ...core.errors import StoreError
from ...core.retention import hot_days
from ...core.stream import connect
from ...core.wire import KST, TICK_SCHEMA, Venue, ticks_to_table
from ...stores.contract import TickStore
from ...stores.hot import HotStore
from ...stores.lake import Lake
from ..brokers.errors import BrokerError
from ..collectors import read_gaps
from .archive import StoredTick, SymbolArchive, analyse, by_symbol, merge_windows, minute, union_by_key, window_of
from .convert import Conversion, from_anchored, from_exact
from .report import Disagreement, RecoveryReport, SymbolReport, report_rows, write_json
from .sources import BrokerSource, TradesUnavailable, open_source

log = logging.getLogger(__name__)
UTC = UTC
DEFAULT_UNTIL = "153000"
SYMBOL_CHUNK = 100  # symbols read from the stores at once (bounded memory on a full-market day)


def today_kst() -> date:
    return trading_date(datetime.now(UTC))


def _verify(settings: Settings, day: date, symbols: Sequence[str] | None, with_hot: bool, stores: Sequence[TickStore],
            venue: Venue, proven_empty: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The day's verify, judged for one venue (the other venue has its own run); a universe
    symbol without ticks counts as complete once the broker proved it did not trade."""
    from ..sync import verify

    report = verify(settings, day, symbols=list(symbols) if symbols else None, source="both" if with_hot else "cold", stores=stores)
    facts = report.venues().get(venue, {})
    missing = [s for s in facts.get("silent", []) if s not in proven_empty]
    errors = [f"{c.store} store unreadable: {c.error}" for c in report.stores.values() if c.error]
    duplicates = sum(1 for c in report.stores.values() for d in c.duplicate_samples if d.venue == venue)
    reasons = errors + [r for r in report.reasons() if r.startswith(f"{venue}:")]
    if report.no_ticks:
        reasons.append(f"not proven: {day} is a trading day and no store holds a tick of it")
    if missing:
        reasons.append(f"{venue}: {len(missing)} symbol(s) of the day's universe have no ticks ({', '.join(missing[:5])})")
    if facts.get("differences"):
        reasons.append(f"{venue}: hot and cold differ in {facts['differences']} minute(s)")
    if duplicates:
        reasons.append(f"{venue}: {duplicates} duplicated tick(s)")
    return {"consistent": not reasons, "reasons": reasons, "missing_volume": facts.get("missing_volume", 0),
            "gaps": facts.get("gaps", 0), "differences": facts.get("differences", 0), "venue": venue}


def _counts(table: pa.Table) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    grouped = table.group_by("symbol").aggregate([("symbol", "count")])
    return dict(zip(grouped.column("symbol").to_pylist(), grouped.column("symbol_count").to_pylist()))


class Recovery:
    """One recovery run of one day through one broker."""

    def __init__(self, settings: Settings, day: date, *, broker: str | None = None, symbols: Sequence[str] | None = None,
                 dry_run: bool = False, today: date | None = None, source: BrokerSource | None = None,
                 hot: HotStore | None = None, lake: Lake | None = None, venue: Venue = "KRX"):
        self.settings = settings
        self.day = day
        self.venue = venue
        self.broker = broker or (source.name if source else settings.recovery_broker)
        self.symbols = sorted(set(symbols)) if symbols else None
        self.dry_run = dry_run
        self.today = today or today_kst()
        self._source = source
        self._hot = hot
        self._lake = lake
        self._own_stores = hot is None or lake is None
        self._collector_gaps: list[tuple[frozenset[str], tuple[datetime, datetime]]] = []

    # ------------------------------------------------------------------ stores
    def _stores(self) -> tuple[HotStore, Lake]:
        if self._lake is None:
            self._lake = Lake(self.settings)
        if self._hot is None:
            self._hot = HotStore(self.settings)
        return self._hot, self._lake

    def run(self) -> RecoveryReport:
        hot, lake = self._stores()
        with_hot = hot_days(self.settings, trading_day_bounds(self.today)[0]).holds(self.day)
        report = RecoveryReport(self.day, self.broker, self.dry_run, with_hot, datetime.now(UTC), venue=self.venue)
        source = self._source or open_source(self.settings, self.broker, self.venue)
        if getattr(source, "venue", self.venue) != self.venue:
            raise ValueError(f"the broker source serves {source.venue}, not {self.venue}; open one source per venue")
        self._note_open_day(report)
        stores: list[TickStore] = [hot, lake] if with_hot else [lake]
        try:
            lake.require()
            report.verify_before = _verify(self.settings, self.day, self.symbols, with_hot, stores, self.venue)
            self._collector_gaps = self._read_collector_gaps(report)
            named = {s for symbols, _ in self._collector_gaps for s in symbols}
            symbols = self.symbols or sorted(set(self._day_symbols(hot, lake, with_hot)) | named)
            for first in range(0, len(symbols), SYMBOL_CHUNK):
                self._recover_chunk(source, symbols[first : first + SYMBOL_CHUNK], report, hot, lake, with_hot)
            report.calls = source.calls()
            if not self.dry_run:
                proven_empty = frozenset(r.symbol for r in report.symbols if r.complete and r.ticks_after == 0)
                report.verify_after = _verify(self.settings, self.day, self.symbols, with_hot, stores, self.venue, proven_empty)
        finally:
            if self._source is None:
                source.close()
        report.finished_at = datetime.now(UTC)
        try:
            if not self.dry_run:
                self._store(report, hot, with_hot)
        finally:
            if self._own_stores:
                hot.close()
                lake.close()
        return report

    def _note_open_day(self, report: RecoveryReport) -> None:
        """A run before the venue's close checks only the trades so far: say so (the scheduler waits)."""
        if not calendar.venue_active(self.day, self.venue):
            return
        close = calendar.venue_close(self.day, self.venue)
        if datetime.now(UTC) < close:
            report.notes.append(f"{self.venue} trades until {close:%H:%M} KST: later trades are not checked; "
                                f"re-run after {close:%H:%M} (the scheduled run does)")

    def _day_symbols(self, hot: HotStore, lake: Lake, with_hot: bool) -> list[str]:
        """Every symbol either store holds for the day on this run's venue, and every symbol the
        day's universe lists for it (a symbol with no stored tick at all is checked too)."""
        found = {s for v, s in lake.symbols_of_day(self.day) if v == self.venue}
        found |= {s for v, s in lake.read_universe(self.day) if v == self.venue}
        if with_hot:
            found |= {s for v, s in hot.symbols_of_day(self.day) if v == self.venue}
            found |= {s for v, s in hot.read_universe(self.day) if v == self.venue}
        return sorted(found)

    def _read_collector_gaps(self, report: RecoveryReport) -> list[tuple[frozenset[str], tuple[datetime, datetime]]]:
        """The day's recorded collector gaps as (symbols, whole-minute window); no symbols = every symbol."""
        day_start, day_end = trading_day_bounds(self.day)
        try:
            client = connect(self.settings.redis_dsn)
            try:
                records = read_gaps(client, self.settings.stream, since=day_start)
            finally:
                client.close()
        except redis.RedisError as exc:
            log.warning("recovery %s: collector gap records not read (%s); continuity and the broker's bars still apply", self.day, exc)
            report.notes.append(f"collector gap records not read ({exc}); continuity and the broker's bars still checked")
            return []
        gaps = []
        for record in records:
            if record.get("venue", self.venue) != self.venue:  # a record of one venue's feed only
                continue
            start, end = datetime.fromisoformat(record["start"]), datetime.fromisoformat(record["end"])
            if start >= day_end or record.get("venue", self.venue) != self.venue:
                continue  # a record without a venue (pub/sub bridge) covers every venue
            window = (max(minute(start), day_start), min(minute(end) + timedelta(minutes=1), day_end))
            gaps.append((frozenset(s for s in record.get("symbols", "").split(",") if s), window))
        return gaps

    def _recorded_windows(self, symbol: str) -> list[tuple[datetime, datetime]]:
        return merge_windows([window for symbols, window in self._collector_gaps if not symbols or symbol in symbols])

    def _recover_chunk(self, source: BrokerSource, symbols: list[str], report: RecoveryReport, hot: HotStore, lake: Lake,
                       with_hot: bool) -> None:
        """Copy between the stores, then ask the broker, for a bounded group of symbols."""
        from ..sync.reconcile import missing_from

        start, end = trading_day_bounds(self.day)
        lake_ticks = lake.read_ticks(start, end, symbols, venue=self.venue)
        hot_ticks = hot.read_ticks(start, end, symbols, venue=self.venue) if with_hot else TICK_SCHEMA.empty_table()
        to_lake = missing_from(hot_ticks, lake_ticks)
        to_hot = missing_from(lake_ticks, hot_ticks) if with_hot else TICK_SCHEMA.empty_table()
        if not self.dry_run:
            if to_lake.num_rows:
                lake.upsert(to_lake)
            if to_hot.num_rows:
                hot.upsert(to_hot)
        archives = by_symbol(union_by_key(lake_ticks, hot_ticks))
        copied_lake, copied_hot = _counts(to_lake), _counts(to_hot)
        in_lake, in_hot = _counts(lake_ticks), _counts(hot_ticks)
        del lake_ticks, hot_ticks
        for symbol in symbols:
            archive = archives.get(symbol) or SymbolArchive(symbol, [], [], 0)
            sym = SymbolReport(symbol, venue=self.venue, copied_to_hot=copied_hot.get(symbol, 0), copied_to_lake=copied_lake.get(symbol, 0),
                               lake_ticks_before=in_lake.get(symbol, 0), hot_ticks_before=in_hot.get(symbol, 0),
                               collector_gaps=self._recorded_windows(symbol))
            report.symbols.append(sym)
            try:
                self._recover_symbol(source, archive, sym, hot, lake, with_hot)
            except BrokerError as exc:
                sym.error = str(exc)
                log.error("recovery %s %s: %s", self.day, symbol, exc)

    def _store(self, report: RecoveryReport, hot: HotStore, with_hot: bool) -> None:
        path = write_json(report, self.settings.lake_dir)
        log.info("recovery report written to %s", path)
        try:
            hot.write_recovery_report(report_rows(report))
        except StoreError as exc:  # the JSON copy exists; a down hot store must not hide the result
            log.error("recovery report not stored in the hot table (%s: %s); the JSON copy is at %s", type(exc).__name__, exc, path)

    # ------------------------------------------------------------------ one symbol
    def _recover_symbol(self, source: BrokerSource, archive: SymbolArchive, sym: SymbolReport, hot: HotStore, lake: Lake,
                        with_hot: bool) -> None:
        sym.ticks_before = len(archive.ticks)  # the union of both stores
        sym.volume_before = archive.volume
        sym.gaps_found = len(archive.missing)
        sym.missing_volume_found = sum(r.volume for r in archive.missing)
        sym.conflicts = archive.conflicts
        day_open = datetime(self.day.year, self.day.month, self.day.day, tzinfo=KST)
        if not archive.missing and not archive.conflicts:
            # continuity holds, so the last cumulative volume is the stored day volume exactly;
            # one call for the broker's day volume proves the symbol complete (no bars needed)
            total = source.day_volume(sym.symbol, self.day, self.today)
            stored = archive.ticks[-1].cum_volume if archive.ticks else 0
            if total is not None and total > stored:
                # only trades after the last stored tick can be missing: fetch just that tail
                tail = (minute(archive.ticks[-1].ts) if archive.ticks else day_open, day_open + timedelta(days=1))
                archive, _, _ = self._fetch_and_apply(source, archive, sym, [tail], hot, lake, with_hot)
                stored = archive.ticks[-1].cum_volume if archive.ticks else 0
            if total is not None and total == stored and not archive.missing:
                if sym.collector_gaps:
                    sym.notes.append(f"{len(sym.collector_gaps)} recorded collector gap(s): continuity and the broker's day volume prove none lost a trade")
                self._finish(sym, archive)
                return
            if total is not None:
                sym.notes.append(f"broker day volume {total}, archive {stored}: checking minute bars")
        until = self._until()
        if archive.ticks:
            until = max(until, minute(archive.ticks[-1].ts).strftime("%H%M%S"))
        bars = source.minute_bars(sym.symbol, self.day, self.today, until)
        broker_volume = {b.minute: b.volume for b in bars}
        disagreeing = _disagreeing(broker_volume, archive.minute_volumes())
        sym.minutes_disagreeing = len(disagreeing)
        windows = merge_windows([window_of(r, day_open) for r in archive.missing] +
                                [(m, m + timedelta(minutes=1)) for m in disagreeing] + sym.collector_gaps)
        sym.windows = merge_windows(sym.windows + windows)
        conversion, unavailable = Conversion(), None
        if windows:
            archive, conversion, unavailable = self._fetch_and_apply(source, archive, sym, windows, hot, lake, with_hot)
        self._finish(sym, archive)
        archive_after = archive.minute_volumes()
        for m in _disagreeing(broker_volume, archive_after):
            b, a = broker_volume.get(m, 0), archive_after.get(m, 0)
            sym.still_disagreeing.append(Disagreement(m, b, a, _why(b, a, unavailable, conversion)))
        if archive.missing and not sym.still_disagreeing:
            sym.notes.append(f"{len(archive.missing)} continuity gap(s) remain although the bars agree (volume {sym.missing_volume_left})")

    def _until(self) -> str:
        """Minute bars are read back from the venue's close (KRX 18:10 or 20:00, NXT 20:00)."""
        if not calendar.venue_active(self.day, self.venue):
            return DEFAULT_UNTIL
        close = calendar.venue_close(self.day, self.venue).astimezone(KST)
        return close.strftime("%H%M%S") if close.date() == self.day else "235959"

    def _fetch_and_apply(self, source: BrokerSource, archive: SymbolArchive, sym: SymbolReport, windows: list[tuple[datetime, datetime]],
                         hot: HotStore, lake: Lake, with_hot: bool) -> tuple[SymbolArchive, Conversion, str | None]:
        """Broker trades for ``windows`` -> proven ticks -> both stores. Returns the archive with them."""
        if not sym.windows:
            sym.windows = list(windows)
        try:
            trades = source.trades(sym.symbol, self.day, self.today, windows)
        except TradesUnavailable as exc:
            sym.notes.append(str(exc))
            return archive, Conversion(), str(exc)
        now = datetime.now(UTC)
        if source.exact_cum_volume:
            conversion = from_exact(archive, trades, now, self.venue)
        else:
            conversion = from_anchored(archive, trades, windows[0][0], now, self.venue)
        if conversion.reason:
            sym.notes.append(conversion.reason)
        new = [replace(t, venue=self.venue) for t in conversion.ticks]  # the trades of this run's venue
        if not new:
            return archive, conversion, None
        table = ticks_to_table(new)
        if not self.dry_run:
            lake.upsert(table)
            if with_hot:
                hot.upsert(table)  # TimescaleDB: the upsert refreshes the day's candles too
        sym.ticks_recovered += len(new)
        sym.volume_recovered += sum(t.volume for t in new)
        log.info("recovery %s %s: %d ticks (%d volume) recovered from %s", self.day, sym.symbol, len(new), sum(t.volume for t in new), source.name)
        added = [StoredTick(t.ts.astimezone(KST), t.price, t.volume, t.cum_volume) for t in new]
        return analyse(sym.symbol, archive.ticks + added), conversion, None

    @staticmethod
    def _finish(sym: SymbolReport, archive: SymbolArchive) -> None:
        sym.ticks_after = len(archive.ticks)
        sym.volume_after = archive.volume
        sym.gaps_left = len(archive.missing)
        sym.missing_volume_left = sum(r.volume for r in archive.missing)
        sym.conflicts = archive.conflicts
        sym.notes = list(dict.fromkeys(sym.notes))


def _disagreeing(broker: dict[datetime, int], archive: dict[datetime, int]) -> list[datetime]:
    return sorted(m for m in set(broker) | set(archive) if broker.get(m, 0) != archive.get(m, 0))


def _why(broker: int, archive: int, unavailable: str | None, conversion: Conversion) -> str:
    if archive > broker:
        return "the archive holds more volume than the broker's bar (broker bar incomplete, or ticks the broker does not know)"
    if unavailable:
        return "bars only: " + unavailable
    if conversion.reason:
        return conversion.reason
    return "the broker's trade list for this minute does not add up to its bar"


def recover(settings: Settings, day: date, *, broker: str | None = None, symbols: Sequence[str] | None = None,
            dry_run: bool = False, today: date | None = None, source: BrokerSource | None = None,
            venue: Venue = "KRX") -> RecoveryReport:
    """Run recovery of one venue for one KST date; see the module docstring."""
    return Recovery(settings, day, broker=broker, symbols=symbols, dry_run=dry_run, today=today, source=source, venue=venue).run()


def recover_venues(settings: Settings, day: date, venues: Sequence[Venue], *, broker: str | None = None,
                   symbols: Sequence[str] | None = None, dry_run: bool = False, today: date | None = None,
                   sources: Mapping[str, BrokerSource] | None = None) -> list[RecoveryReport]:
    """One recovery run per venue that trades on ``day`` (KRX first); ``sources``: a broker source per venue."""
    active = [v for v in venues if calendar.venue_active(day, v)] or list(venues[:1])
    return [recover(settings, day, broker=broker, symbols=symbols, dry_run=dry_run, today=today,
                    source=(sources or {}).get(v), venue=v) for v in active]
