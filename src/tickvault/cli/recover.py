"""`tickvault recover --date D [--venue krx|nxt|all] [--broker kis|kiwoom] [--symbols …] [--dry-run] [--json]`."""

from __future__ import annotations

import json
from datetime import date

import click

from . import fail, get_settings


def _parse_day(_ctx: click.Context, _param: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD (KST trading date)") from None


def _parse_symbols(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str] | None:
    symbols = [s.strip().upper() for v in values for s in v.split(",") if s.strip()]
    for s in symbols:
        if len(s) != 6 or not s.isalnum():
            raise click.BadParameter(f"{s!r} is not a KRX short code (6 characters, e.g. 005930)")
    return symbols or None


@click.command("recover")
@click.option("--date", "day", required=True, callback=_parse_day, help="KST trading date, YYYY-MM-DD.")
@click.option("--broker", type=click.Choice(["kis", "kiwoom"]), default=None, help="Broker to compare with (default: setting recovery_broker).")
@click.option("--symbols", multiple=True, callback=_parse_symbols,
              help="Only these symbols (comma-separated or repeated); default: every symbol archived that day.")
@click.option("--venue", type=click.Choice(["krx", "nxt", "all"], case_sensitive=False), default="all", show_default=True,
              help="Which venue's trades to compare (all: each venue trading that day, one run each; NXT only after 20:00 is final).")
@click.option("--dry-run", is_flag=True, help="Compare and plan, fetch what would be recovered, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (format tickvault.recovery/1).")
@click.pass_context
def recover_cmd(ctx: click.Context, day: date, broker: str | None, symbols: list[str] | None, venue: str, dry_run: bool,
                as_json: bool) -> None:
    """Compare one day's archive with the broker's data and fill the gaps in both stores.

    One run per venue (KRX, NXT): each venue has its own trades, cumulative volume and broker
    data, and is final only after its close (KRX 18:10 or 20:00, NXT 20:00). Exit 0 when the
    day is complete for every venue run (every (venue, symbol) agrees with the broker's
    minute bars, no continuity gap, hot and cold consistent); 1 otherwise, with the reason on
    stderr. Safe to re-run: a second run only re-reads the broker's minute bars.
    """
    from ..core.errors import TickvaultError
    from ..core.wire import VENUES
    from ..services.brokers import BrokerAuthError, BrokerError
    from ..services.recovery import recover_venues

    settings = get_settings(ctx)
    venues = list(VENUES) if venue.lower() == "all" else [venue.upper()]
    again = f"tickvault recover --date {day} --venue {venue.lower()}"
    try:
        reports = recover_venues(settings, day, venues, broker=broker, symbols=symbols, dry_run=dry_run)  # type: ignore[arg-type]
    except BrokerAuthError as exc:
        fail(f"{exc}")
        return
    except BrokerError as exc:
        fail(f"{exc}; what was recovered so far is stored — re-run `{again}` later")
        return
    except TickvaultError as exc:  # a store down or unreadable: say which, no traceback
        fail(f"{exc}; then re-run")
    if as_json:
        docs = [r.to_dict() for r in reports]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else {"format": "tickvault.recovery-venues/1", "date": day.isoformat(),
                                                                 "complete": all(r.complete for r in reports), "venues": docs},
                              indent=2, ensure_ascii=False))
    else:
        click.echo("\n\n".join(r.render() for r in reports))
    incomplete = [r for r in reports if not r.complete]
    if incomplete:
        first = incomplete[0]
        reasons = first.reasons() or ["not complete"]
        hint = "re-run without --dry-run to repair" if dry_run else "see the report; re-run on the trading day itself to fetch trades"
        fail(f"{day} {first.venue} not complete: {reasons[0]} ({hint})")
