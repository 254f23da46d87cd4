"""Collector counters as Prometheus series, served by every `tickvault collect` process on
http://metrics_host:collect_metrics_port/metrics (``serve``):

tickvault_collector_frames_total{source}        frames received (data, acks, heartbeats)
tickvault_collector_ticks_total{source}         ticks parsed and queued for the stream
tickvault_collector_venue_ticks_total{source,venue}  the same, per venue (KRX, NXT)
tickvault_collector_published_total{source}     ticks written to the stream
tickvault_collector_reconnects_total{source}    sessions lost and reopened
tickvault_collector_parse_errors_total{source}  frames/records sent to the DLQ
tickvault_collector_venue_mismatches_total{source}  records whose venue field contradicts the subscription (DLQ)
tickvault_collector_gaps_total{source}          disconnected windows recorded in <stream>:gaps
tickvault_collector_connected{source}           1 while a session is open
tickvault_collector_uncovered_pairs{source}     configured (venue, symbol) pairs not collected (plan or refusals)
tickvault_collector_last_frame_timestamp_seconds{source}
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .base import CollectorStats

log = logging.getLogger(__name__)

COUNTERS = ("frames", "ticks", "published", "reconnects", "parse_errors", "venue_mismatches", "gaps")


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
        by_venue = CounterMetricFamily("tickvault_collector_venue_ticks", "collector ticks per venue", labels=["source", "venue"])
        for source, stats in self.stats_by_source.items():
            for venue, count in sorted(stats.ticks_by_venue.items()):
                by_venue.add_metric([source, venue], count)
        yield by_venue
        connected = GaugeMetricFamily("tickvault_collector_connected", "1 while a broker session is open", labels=["source"])
        last = GaugeMetricFamily("tickvault_collector_last_frame_timestamp_seconds", "when the last frame arrived", labels=["source"])
        uncovered = GaugeMetricFamily("tickvault_collector_uncovered_pairs",
                                      "configured (venue, symbol) pairs no session receives (plan or refusals)", labels=["source"])
        for source, stats in self.stats_by_source.items():
            connected.add_metric([source], 1.0 if stats.connected else 0.0)
            uncovered.add_metric([source], float(stats.uncovered))
            if stats.last_frame_at is not None:
                last.add_metric([source], stats.last_frame_at)
        yield connected
        yield last
        yield uncovered


def serve(stats_by_source: Mapping[str, CollectorStats], host: str, port: int) -> Any | None:
    """Serve the counters on http://host:port/metrics from a daemon thread; the server
    (``.shutdown()`` stops it), or None when ``port`` is 0 or cannot be bound: metrics never
    stop a collector from collecting."""
    if port == 0:
        return None
    registry = CollectorRegistry()
    registry.register(CollectorMetrics(stats_by_source))
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("collector metrics not served: %s:%d is taken (%s); give this collector its own "
                  "TICKVAULT_COLLECT_METRICS_PORT (0 turns the endpoint off)", host, port, exc)
        return None
    log.info("collector metrics on http://%s:%d/metrics", host, server.server_port)
    return server

