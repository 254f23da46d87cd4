"""Daily recovery against the broker's own data (see planner.py for the procedure)."""

from .planner import Recovery, recover
from .report import RECOVERY_FORMAT, RecoveryReport, SymbolReport
from .schedule import due_day, next_run, recover_day

__all__ = ["RECOVERY_FORMAT", "Recovery", "RecoveryReport", "SymbolReport", "due_day", "next_run", "recover", "recover_day"]
