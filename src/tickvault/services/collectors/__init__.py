"""Feeds of the stream: broker WebSockets for both venues (KIS H0STCNT0/H0NXCNT0, Kiwoom 0B
items CODE/CODE_NX) planned from the day's universe, the legacy Redis pub/sub bridge and lake
replay. Each publishes wire format v1 through stream.Publisher; unreadable input goes to
``<stream>:dlq`` and disconnected windows (per venue) to ``<stream>:gaps``.
"""

from .base import CollectorStats, FatalCollectorError, Gap, gaps_stream
from .service import build_kis, build_kiwoom, kis_ws_url, read_gaps

__all__ = ["CollectorStats", "FatalCollectorError", "Gap", "build_kis", "build_kiwoom", "gaps_stream", "kis_ws_url", "read_gaps"]
