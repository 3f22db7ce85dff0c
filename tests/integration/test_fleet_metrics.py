"""The fleet's Prometheus metrics, served over real HTTP from counters in a real Redis."""

from __future__ import annotations

import socket

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from orchestrator.metrics import serve_metrics
from orchestrator.state import StateStore

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_counters_and_per_shard_latency_are_exposed(redis_url: str) -> None:
    store = StateStore(redis.Redis.from_url(redis_url), "metrics-test")
    store.reset()
    for _ in range(4):
        store.record_task(0, submitted=5, skipped=0, worker="w0")
    store.record_answers([(0, latency, 4, 1) for latency in (0.010, 0.020, 0.030, 0.400)] + [(1, 0.050, 2, 0)])
    store.record_task(1, submitted=2, skipped=1, worker="w1")
    store.incr("missed_events", 3)
    port = _free_port()
    serve_metrics(store, "metrics-test", port, registry=CollectorRegistry())
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    fleet = (("fleet", "metrics-test"),)
    assert samples[("gsy_fleet_commands_submitted_total", fleet)] == 22
    assert samples[("gsy_fleet_commands_rejected_total", fleet)] == 4
    assert samples[("gsy_fleet_missed_events_total", fleet)] == 3
    assert samples[("gsy_fleet_shard_tasks_total", (("fleet", "metrics-test"), ("shard", "shard-0")))] == 4
    shard0 = (("fleet", "metrics-test"), ("shard", "shard-0"))
    assert samples[("gsy_fleet_dispatch_latency_seconds_count", shard0)] == 4
    assert samples[("gsy_fleet_dispatch_latency_seconds_sum", shard0)] == pytest.approx(0.46)
    p99 = samples[("gsy_fleet_dispatch_latency_quantile_seconds", tuple(sorted((*shard0, ("quantile", "0.99")))))]
    assert p99 == pytest.approx(0.4)
    store.reset()
