"""`tickvault verify`, `reconcile`, `trim` and `rebuild` — keeping hot and cold in sync (docs/sync.md)."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime

import click

from ..core.dates import looks_like_day
from ..core.wire import KST
from . import fail, get_settings, parse_day_text
from .progress import progress


def parse_day(value: str) -> date:
    return parse_day_text(value)


def parse_time(value: str) -> datetime:
    """ISO-8601; a date alone means its KST midnight, a time without offset is KST."""
    try:
        if looks_like_day(value):
            return datetime.combine(parse_day_text(value), datetime.min.time(), tzinfo=KST)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time; use ISO-8601 like 2026-11-20T09:00+09:00") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=KST)


def split_symbols(values: tuple[str, ...]) -> list[str] | None:
    symbols = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return symbols or None


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.command("verify")
@click.option("--date", "day", required=True, help="KST trading date, YYYY-MM-DD.")
@click.option("--symbols", multiple=True, help="Only these symbols (repeat or comma-separate).")
@click.option("--source", type=click.Choice(["both", "hot", "cold"]), default="both", show_default=True, help="Which store(s) to check.")
@click.option("--json", "as_json", is_flag=True, help="Print the tickvault.verify/1 document (docs/sync.md).")
@click.pass_context
def verify_cmd(ctx: click.Context, day: str, symbols: tuple[str, ...], source: str, as_json: bool) -> None:
    """Prove a day's continuity: per (venue, symbol), cum_volume steps by exactly each tick's volume.

    Reports gaps (with the exact missing volume, per venue), duplicate ticks, symbols of the
    day's universe without ticks, ticks outside every session of their venue (flagged only)
    and, with --source both, minutes where hot and cold differ. Exit 0 only when everything is
    consistent.
    """
    from ..services.sync import verify

    settings = get_settings(ctx)
    the_day = parse_day(day)
    verify_log = logging.getLogger("tickvault.services.sync.verify")
    level = verify_log.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # an unreadable store is this command's one line, not a log line too
        verify_log.setLevel(logging.CRITICAL)
    try:
        report = verify(settings, the_day, split_symbols(symbols), source)
    finally:
        verify_log.setLevel(level)  # in-process callers (tests, notebooks) keep their logging
    if as_json:
        _echo_json(report.to_dict())
    else:
        for check in report.stores.values():
            state = "error: " + check.error if check.error else ("ok" if check.consistent else "NOT consistent")
            click.echo(
                f"{check.store:4}  {check.symbols} symbols  {check.ticks} ticks  volume {check.volume}  "
                f"gaps {len(check.gaps)}  duplicates {check.duplicates}  {state}"
            )
        for venue, facts in report.venues().items():
            expected = "" if facts["universe"] is None else f" of {facts['universe']} in the universe"
            click.echo(
                f"{venue:4}  {facts['series']} symbols{expected}  gaps {facts['gaps']}  missing volume {facts['missing_volume']}  "
                f"no ticks {len(facts['silent'])}  outside sessions {facts['out_of_session_ticks']}  "
                f"{'complete' if facts['complete'] else 'NOT complete'}"
            )
        for flag in report.flags():
            click.echo(f"flag  {flag}")
        if report.differences:
            click.echo(f"hot and cold differ in {len(report.differences)} minute(s), e.g. "
                       + ", ".join(f"{d.symbol}@{d.minute.astimezone(KST):%H:%M}" for d in report.differences[:5]))
        for gap in report.gaps[:50]:
            start = gap.start_ts.astimezone(KST).isoformat() if gap.start_ts else "day start"
            click.echo(f"gap  {gap.symbol} {gap.venue}  {start} .. {gap.end_ts.astimezone(KST).isoformat()}  missing volume {gap.missing_volume}")
        if len(report.gaps) > 50:
            click.echo(f"... and {len(report.gaps) - 50} more gaps (use --json)")
    unreadable = [s for s in report.stores.values() if s.error]
    if unreadable:  # repairing cannot help before the store can be read: its own advice comes first
        fail(f"{the_day} not verified: " + "; ".join(f"{s.store} store: {s.error}" for s in unreadable))
    if not report.consistent and (report.no_ticks or report.silent) and report.stores_agree:
        fail(f"{the_day} is not proven: {'; '.join(report.reasons())} — check the collectors of that day and run "
             f"`tickvault recover --date {the_day}` (the broker's ticks)")
    if not report.consistent:
        fail(f"{the_day} is not consistent: {'; '.join(report.reasons())} — run `tickvault reconcile --date {the_day} --repair`, "
             f"then `tickvault recover --date {the_day}` for gaps in both stores")


@click.command("reconcile")
@click.option("--date", "day", required=True, help="KST trading date, YYYY-MM-DD.")
@click.option("--repair", is_flag=True,
              help="Copy each store's missing ticks from the other (idempotent) and settle conflicting duplicates.")
@click.option("--broker", type=click.Choice(["kis", "kiwoom"]), default=None,
              help="With --repair: settle conflicts by this broker's trades (it lists only today's); else the earliest received wins.")
@click.option("--symbols", multiple=True, help="Only these symbols (repeat or comma-separate).")
@click.option("--json", "as_json", is_flag=True, help="Print the tickvault.reconcile/1 document.")
@click.pass_context
def reconcile_cmd(ctx: click.Context, day: str, repair: bool, broker: str | None, symbols: tuple[str, ...], as_json: bool) -> None:
    """Compare hot and cold per (symbol, minute); with --repair make both hold the union.

    With --repair a key both stores hold with different values is settled: the broker's trade
    wins (--broker), else the earliest-received copy; each change is printed.

    Cheap when nothing differs (one aggregate query per store). Writes the day's
    integrity report to both stores. Exit 0 when the day ends up consistent.
    """
    from ..services.sync.reconcile import reconcile

    settings = get_settings(ctx)
    the_day = parse_day(day)
    if broker is not None and not repair:
        fail("--broker settles conflicts, which only --repair does: add --repair")
    source = None
    try:
        values = None
        if broker is not None:
            from ..services.recovery.settle import broker_values
            from ..services.recovery.sources import open_source

            source = open_source(settings, broker)
            values = broker_values(source, the_day)
        with progress(f"reconcile {the_day}", "steps") as on_progress:
            report = reconcile(settings, the_day, repair, symbols=split_symbols(symbols), on_progress=on_progress,
                               settle_conflicts_too=repair, broker_values=values)
    except ValueError as exc:
        fail(str(exc))
        return
    finally:
        if source is not None:
            source.close()
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(
            f"{the_day}: {len(report.differences)} differing minute(s); added {report.added_to_hot} ticks to hot, "
            f"{report.added_to_cold} to cold in {report.seconds:.2f}s"
        )
        for c in report.unsettled:
            click.echo(f"conflict {c.venue} {c.symbol} {c.ts.isoformat()} cum_volume {c.cum_volume}: hot {c.hot['price']}/"
                       f"{c.hot['volume']}/{c.hot['side'] or '-'}, cold {c.cold['price']}/{c.cold['volume']}/{c.cold['side'] or '-'} "
                       f"(first received: {c.preferred}); neither store changed")
        for settled in report.settled:
            click.echo(f"settled {settled.describe()}")
        for target, reject in report.rejected:
            click.echo(f"not copied to {target}: {reject.describe()}")
        if report.after is not None:
            click.echo(f"after: {'consistent' if report.consistent else '; '.join(report.reasons())}")
    if not report.consistent:
        hint = "run again with --repair" if report.differences and not repair else f"see `tickvault verify --date {the_day}`"
        if report.unsettled:
            hint = "run again with --repair to settle the conflicting keys (docs/sync.md, conflicting duplicates)"
        fail(f"{the_day} is not consistent after reconcile: {'; '.join(report.reasons())} — {hint}")


@click.command("trim")
@click.option("--dry-run", is_flag=True, help="Only report what would be trimmed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.pass_context
def trim_cmd(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Trim stream entries every consumer group has acknowledged (never unconsumed ones).

    Exits 2 when the stream is over its ceiling (stream_max_entries / stream_max_memory_mb)
    because a group lags: that is an alarm, not something trimming may fix.
    """
    from ..services.sync.trim import trim_shards

    settings = get_settings(ctx)
    results = trim_shards(settings, dry_run=dry_run)
    if as_json:
        _echo_json(results[0].to_dict() if len(results) == 1 else {"shards": [r.to_dict() for r in results]})
    else:
        verb = "would trim" if dry_run else "trimmed"
        for result in results:
            click.echo(f"{result.stream}: {verb} {result.trimmed} of {result.entries_before} entries"
                       + (f" (below {result.safe_min_id}, held by group {result.held_by})" if result.safe_min_id else "")
                       + (f"; not trimmed: {result.reason}" if result.reason else ""))
            for group, position in sorted(result.positions.items()):
                click.echo(f"  group {group}: oldest unacknowledged {position}")
    alarms = [r.alarm for r in results if r.alarm]
    if alarms:
        fail(alarms[0], code=2)


@click.command("rebuild")
@click.argument("target", type=click.Choice(["hot", "cold"]))
@click.option("--from", "start", required=True, help="Start time (ISO-8601; a date = its KST midnight; no offset = KST).")
@click.option("--to", "end", help="End time (exclusive); default: everything the other store has.")
@click.option("--wait", "wait_s", type=float, default=60.0, show_default=True, help="Seconds to wait for the other archiver to store what the stream holds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.pass_context
def rebuild_cmd(ctx: click.Context, target: str, start: str, end: str | None, wait_s: float, as_json: bool) -> None:
    """Refill TARGET from the other store and move TARGET's stream position forward.

    For a store whose backlog outgrew the stream, or after the stream was lost. Safe to
    re-run. Runbook: docs/sync.md.
    """
    from ..services.sync.rebuild import RebuildError, rebuild

    settings = get_settings(ctx)
    begin = parse_time(start)
    finish = parse_time(end) if end else None
    try:
        with progress(f"rebuild {target}", "minutes") as on_progress:
            result = rebuild(settings, target, begin, finish, wait_s=wait_s, on_progress=on_progress)
    except (RebuildError, ValueError) as exc:
        fail(str(exc))
        return
    if as_json:
        _echo_json(result.to_dict())
    else:
        where = result.group_position if len(result.shards) == 1 else f"the position below on each of its {len(result.shards)} shards"
        click.echo(
            f"rebuilt {target} from {result.source}: {result.read} ticks read, {result.added} added; "
            f"{result.replay_added} ticks the copy could not carry replayed from the stream "
            f"({result.replayed_entries} backlog entries read, {result.dead_letters} dead-lettered); "
            f"group {target} now at {where} ({result.acked_pending} pending entries acked) in {result.seconds:.1f}s"
        )
        if len(result.shards) > 1:
            for key, position in result.shards.items():
                click.echo(f"  {key}  {position}")
