"""The fleet's own Prometheus metrics, read from the state store at scrape time.

Workers and the dispatcher count into Redis as they go (``StateStore.record_task`` and
``record_answers``); this collector turns those counters and the per-shard latency samples into
Prometheus families, so any process that
reaches the fleet's Redis (the dispatcher, or ``gsy-e-sdk fleet metrics``) can serve them beside
Flower's ``/metrics``. Nothing is kept in process memory, so a restarted exporter loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from orchestrator.report import percentile
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

COUNTERS = {
    "commands_submitted": "Commands the workers sent to the exchange",
    "commands_accepted": "Commands the exchange accepted",
    "commands_rejected": "Commands the exchange rejected",
    "assets_skipped": "Asset decisions skipped because their strategy raised",
    "missed_events": "Market tick events the dispatcher never received (gaps in the 10 % sequence)",
    "resynced_slots": "Slots whose market event was lost and started from their next tick instead",
    "duplicate_events": "Events received twice and dispatched once",
    "tasks_done": "Celery tasks the workers finished",
    "slices_done": "Aggregator slices the workers decided (a task carries a shard's burst of slices)",
    "batches_failed": "Batches that never reached the exchange (Redis or HTTP error)",
    "trades": "Trades of the fleet's assets",
}
QUANTILES = (0.5, 0.9, 0.99)


class FleetCollector(Collector):
    def __init__(self, store: StateStore, fleet: str) -> None:
        self.store = store
        self.fleet = fleet

    def collect(self) -> Iterator:
        counters = self.store.counters()
        for name, documentation in COUNTERS.items():
            family = CounterMetricFamily(f"gsy_fleet_{name}", documentation, labels=["fleet"])
            family.add_metric([self.fleet], counters.get(name, 0))
            yield family
        per_shard = CounterMetricFamily(
            "gsy_fleet_shard_tasks", "Tasks finished per shard queue", labels=["fleet", "shard"]
        )
        for name, value in counters.items():
            if name.startswith("tasks_shard-"):
                per_shard.add_metric([self.fleet, name.removeprefix("tasks_")], value)
        yield per_shard
        latency = SummaryMetricFamily(
            "gsy_fleet_dispatch_latency_seconds",
            "Event received by the dispatcher -> the exchange's answer to the "
            "slice's batch, per shard (recent samples)",
            labels=["fleet", "shard"],
        )
        quantiles = GaugeMetricFamily(
            "gsy_fleet_dispatch_latency_quantile_seconds",
            "Quantiles of the recent dispatch latency samples per shard",
            labels=["fleet", "shard", "quantile"],
        )
        for shard, samples in sorted(self.store.latencies().items()):
            if not samples:
                continue
            latency.add_metric([self.fleet, shard], count_value=len(samples), sum_value=sum(samples))
            for fraction in QUANTILES:
                quantile = percentile(samples, fraction)
                if quantile is not None:  # always, as samples is not empty
                    quantiles.add_metric([self.fleet, shard, str(fraction)], quantile)
        yield latency
        yield quantiles


def serve_metrics(
    store: StateStore, fleet: str, port: int, address: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> None:
    """Expose the fleet's metrics at ``http://<address>:<port>/metrics`` from a daemon thread."""
    registry.register(FleetCollector(store, fleet))
    start_http_server(port, addr=address, registry=registry)
    logger.info("fleet metrics on http://%s:%d/metrics", address, port)
