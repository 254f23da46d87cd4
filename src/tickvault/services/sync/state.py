"""What sync last saw, for the metrics exporter and `tickvault status` (process-local).

The metrics (ops/metrics.py) read ``snapshot()`` and export each value as a gauge; the
stream-ceiling alarm is the one an operator must be paged for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class SyncState:
    stream_alarm: bool = False
    stream_alarm_reason: str | None = None
    stream_entries: int = 0
    last_trim_at: float = 0.0
    last_trimmed: int = 0
    last_reconcile_at: float = 0.0
    last_reconcile_consistent: bool = True
    last_reconcile_differences: int = 0
    last_reconcile_repaired: int = 0
    last_reconcile_seconds: float = 0.0
    reconcile_failures: int = 0


_lock = threading.Lock()
STATE = SyncState()


def record_trim(entries: int, trimmed: int, alarm_reason: str | None) -> None:
    with _lock:
        STATE.stream_entries = entries
        STATE.last_trimmed = trimmed
        STATE.last_trim_at = time.time()
        STATE.stream_alarm = alarm_reason is not None
        STATE.stream_alarm_reason = alarm_reason


def record_reconcile(consistent: bool, differences: int, repaired: int, seconds: float) -> None:
    with _lock:
        STATE.last_reconcile_at = time.time()
        STATE.last_reconcile_consistent = consistent
        STATE.last_reconcile_differences = differences
        STATE.last_reconcile_repaired = repaired
        STATE.last_reconcile_seconds = seconds


def record_reconcile_failure() -> None:
    with _lock:
        STATE.reconcile_failures += 1


def snapshot() -> dict[str, float]:
    """Gauge name -> value (names are Prometheus-ready, without the ``tickvault_`` prefix)."""
    with _lock:
        return {
            "stream_ceiling_alarm": 1.0 if STATE.stream_alarm else 0.0,
            "stream_entries": float(STATE.stream_entries),
            "stream_last_trim_timestamp_seconds": STATE.last_trim_at,
            "stream_last_trimmed_entries": float(STATE.last_trimmed),
            "reconcile_last_run_timestamp_seconds": STATE.last_reconcile_at,
            "reconcile_consistent": 1.0 if STATE.last_reconcile_consistent else 0.0,
            "reconcile_differing_minutes": float(STATE.last_reconcile_differences),
            "reconcile_repaired_ticks": float(STATE.last_reconcile_repaired),
            "reconcile_duration_seconds": STATE.last_reconcile_seconds,
            "reconcile_failures_total": float(STATE.reconcile_failures),
        }


def alarm_reason() -> str | None:
    with _lock:
        return STATE.stream_alarm_reason
