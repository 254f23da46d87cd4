"""Keeping hot and cold in sync, provably: continuity check, reconcile, safe trimming, rebuild."""

from .report import VERIFY_FORMAT, Duplicate, Gap, MinuteDiff, MinuteStats, StoreCheck, VerifyReport
from .verify import verify

__all__ = ["VERIFY_FORMAT", "Duplicate", "Gap", "MinuteDiff", "MinuteStats", "StoreCheck", "VerifyReport", "verify"]
