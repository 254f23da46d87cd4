"""Collector counters as Prometheus series, for the OPS exporter to register:

    registry.register(CollectorMetrics({"kis": collector.stats}))

tickvault_collector_frames_total{source}        frames received (data, acks, heartbeats)
tickvault_collector_ticks_total{source}         ticks parsed and queued for the stream
tickvault_collector_published_total{source}     ticks written to the stream
tickvault_collector_reconnects_total{source}    sessions lost and reopened
tickvault_collector_parse_errors_total{source}  frames/records sent to the DLQ
tickvault_collector_gaps_total{source}          disconnected windows recorded in <stream>:gaps
tickvault_collector_connected{source}           1 while a session is open
tickvault_collector_last_frame_timestamp_seconds{source}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .base import CollectorStats

COUNTERS = ("frames", "ticks", "published", "reconnects", "parse_errors", "gaps")


class CollectorMetrics(Collector):
    """Reads the live ``CollectorStats`` at scrape time (no bookkeeping in the receive loop)."""

    def __init__(self, stats_by_source: Mapping[str, CollectorStats]):
        self.stats_by_source = stats_by_source

    def collect(self) -> Iterator[Metric]:
        for name in COUNTERS:
            family = CounterMetricFamily(f"tickvault_collector_{name}", f"collector {name.replace('_', ' ')}", labels=["source"])
            for source, stats in self.stats_by_source.items():
                family.add_metric([source], getattr(stats, name))
            yield family
        connected = GaugeMetricFamily("tickvault_collector_connected", "1 while a broker session is open", labels=["source"])
        last = GaugeMetricFamily("tickvault_collector_last_frame_timestamp_seconds", "when the last frame arrived", labels=["source"])
        for source, stats in self.stats_by_source.items():
            connected.add_metric([source], 1.0 if stats.connected else 0.0)
            if stats.last_frame_at is not None:
                last.add_metric([source], stats.last_frame_at)
        yield connected
        yield last
