"""Daily recovery against the broker's own data (see planner.py for the procedure)."""

from .daily import recover_day
from .planner import Recovery, recover, recover_venues
from .report import RECOVERY_FORMAT, RecoveryReport, SymbolReport

__all__ = ["RECOVERY_FORMAT", "Recovery", "RecoveryReport", "SymbolReport", "recover", "recover_day", "recover_venues"]
