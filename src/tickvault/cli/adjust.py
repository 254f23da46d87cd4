"""`tickvault adjustments refresh|show`: daily adjustment factors (수정주가) for adjusted prices."""

from __future__ import annotations

from typing import Literal

import click

from . import fail, get_settings, parse_day_text
from .query import answer, common_output, emit


@click.group("adjustments")
def adjustments_group() -> None:
    """Daily adjustment factors per symbol, from the broker's adjusted vs as-traded daily closes;
    `candles --adjusted` / `ticks --adjusted` apply them (back-adjusted to the latest date)."""


@adjustments_group.command("refresh")
@click.option("--symbols", required=True, help="Comma-separated codes (e.g. 005930,000660).")
@click.option("--start", required=True, help="First KST date (YYYY-MM-DD, YYYYMMDD, -365d).")
@click.option("--end", default="today", show_default=True, help="Last KST date.")
@click.option("--broker", type=click.Choice(["kis", "kiwoom"]), help="Broker to ask (default: TICKVAULT_RECOVERY_BROKER).")
@common_output
@click.pass_context
def refresh_cmd(ctx: click.Context, symbols: str, start: str, end: str, broker: Literal["kis", "kiwoom"] | None, fmt: str, out: str | None) -> None:
    """Ask the broker for the symbols' daily closes (adjusted and as traded) and store the factors in the lake."""
    from ..services.adjustments import refresh
    from ..services.api import parse_symbols

    wanted = parse_symbols(symbols)
    if not wanted:
        fail("--symbols: name at least one code", 2)
    table = refresh(get_settings(ctx), wanted, parse_day_text(start), parse_day_text(end), broker)
    emit(table, fmt, out)


@adjustments_group.command("show")
@click.option("--symbols", help="Comma-separated codes (default: every symbol with factors).")
@click.option("--start", help="First KST date (default: every date).")
@click.option("--end", help="Last KST date (default: the start date, or today without a start).")
@common_output
@click.pass_context
def show_cmd(ctx: click.Context, symbols: str | None, start: str | None, end: str | None, fmt: str, out: str | None) -> None:
    """The stored factors: symbol, day, factor, close, adjusted_close, source, refreshed_at."""
    answer(ctx, lambda vault: vault.adjustments(symbols, start, end), fmt, out)
