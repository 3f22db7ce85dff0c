"""The fleet end to end: local exchange, dispatcher, real Celery worker processes, real Redis.

The module's run happens once per Celery broker (ids ``redis``: the exchange's Redis, and
``rabbitmq``: a private vhost on the local RabbitMQ), and every test checks both runs.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import yaml
from kombu import Connection

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.redis_connection import get_connection
from orchestrator.celery_app import DELIVERY_LIMIT, make_app
from orchestrator.config import load_fleet_config
from orchestrator.dispatcher import Dispatcher
from orchestrator.messages import slice_payloads
from orchestrator.processes import exchange_command, exchange_env, wait_for_exchange, worker_command
from tests.reliability.fleet_harness import fleet_broker, fleet_dict, rabbitmq_list

pytestmark = pytest.mark.integration

FLEET = fleet_dict("test-fleet")
RESENDS = 2
SCENARIO = Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios" / "community.json"


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory, redis_url, broker):
    """Run one hour of the community with two workers on separate shard queues (alive until the
    module's tests are done)."""
    with fleet_broker(broker, redis_url) as broker_url:
        yield from _fleet_run(tmp_path_factory.mktemp(f"fleet-{broker}"), redis_url, broker, broker_url)


def _fleet_run(tmp: Path, redis_url: str, broker: str, broker_url: str):
    results = tmp / "exchange"
    fleet_file = tmp / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(FLEET))
    exchange_log = open(tmp / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(
            SCENARIO,
            "--strict-reference",
            "--paused",
            "--duration",
            "1h",
            "--tick-length",
            "30s",
            "--start-date",
            "2026-06-01T10:00",
            "--results",
            str(results),
        ),
        stdout=exchange_log,
        stderr=subprocess.STDOUT,
        env=exchange_env(redis_url),
    )
    connection = get_connection(redis_url)
    wait_for_exchange(connection.redis, exchange)
    config = load_fleet_config(fleet_file)
    app = make_app(broker_url)
    dispatcher = Dispatcher(config, connection, app)
    dispatcher.start(fresh=True)
    sent: list[tuple[str, dict, str]] = []
    original_send = app.send_task

    resent = [0]

    def recording_send(name, args=None, queue=None, **options):
        payloads = slice_payloads(args[0])
        sent.extend((name, payload, queue) for payload in payloads)
        # A redelivered task: the first market event's tasks are delivered three times.
        first = name == "workers.on_market_slot" and any(p["slot"].endswith("10:00") for p in payloads)
        for _ in range(1 + RESENDS if first else 1):
            original_send(name, args=args, queue=queue, **options)
        resent[0] += RESENDS if first else 0

    app.send_task = recording_send
    env = {"GSY_FLEET_CONFIG": str(fleet_file), "REDIS_URL": redis_url, "GSY_FLEET_BROKER_URL": broker_url}
    workers = [
        subprocess.Popen(
            worker_command([queue], name),
            env={**os.environ, **env},
            stdout=open(tmp / f"{name}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        for name, queue in (("wa", "shard-0"), ("wb", "shard-1"))
    ]
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < 2:
            assert time.monotonic() < deadline, "workers did not start"
        connection.publish(channels.simulation_control("resume"), {"transaction_id": "test"})
        runner = threading.Thread(target=dispatcher.run, daemon=True)
        runner.start()
        assert exchange.wait(timeout=120) == 0
        runner.join(timeout=30)
        deadline = time.monotonic() + 20
        while dispatcher.store.counters().get("tasks_done", 0) < dispatcher.tasks_sent + resent[0]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        yield {
            "dispatcher": dispatcher,
            "results": results,
            "sent": sent,
            "tmp": tmp,
            "broker": broker,
            "broker_url": broker_url,
        }
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        if exchange.poll() is None:
            exchange.kill()
        exchange_log.close()


def _orders(results: Path) -> list[dict]:
    with (results / "orders.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_every_asset_orders_in_every_slot_and_trades_happen(fleet_run):
    summary = json.loads((fleet_run["results"] / "summary.json").read_text())
    assert summary["trades"] > 0 and summary["energy_traded_kWh"] > 0
    # Strict like the reference exchange: no order named the spot slot, which crashes it (REDIS.md 11.1).
    assert summary["strict_reference"] and summary["spot_orders_naming_time_slot"] == 0
    by_slot = defaultdict(set)
    for order in _orders(fleet_run["results"]):
        by_slot[order["slot"]].add(order["asset"])
    households = set(fleet_run["dispatcher"].aggregators[0].assets.values())
    assert len(households) == 25  # 19 loads, 4 PVs, 2 batteries
    assert sorted(by_slot) == ["2026-06-01T10:00", "2026-06-01T10:15", "2026-06-01T10:30", "2026-06-01T10:45"]
    for slot, assets in by_slot.items():
        assert assets == households, f"{slot}: missing {households - assets}"
    counters = fleet_run["dispatcher"].store.counters()
    # Submitted counts every delivery of a task (the first market event's tasks run three times);
    # the dispatcher counts each batch's answer once.
    assert counters["commands_accepted"] >= 0.9 * counters["commands_submitted"] > 0, sorted(counters.items())
    assert counters["commands_rejected"] <= 0.02 * counters["commands_accepted"], sorted(counters.items())


def test_redelivered_tasks_never_place_orders_twice(fleet_run):
    per_decision = Counter(
        (order["asset"], order["side"], order["transaction_id"]) for order in _orders(fleet_run["results"])
    )
    assert per_decision and max(per_decision.values()) == 1
    first_slot = [
        args
        for name, args, _ in fleet_run["sent"]
        if name == "workers.on_market_slot" and args["slot"].endswith("10:00")
    ]
    assert first_slot, "the injected redelivery did not happen"
    # The first market event's tasks went out three times; each of its decisions placed once.
    first_ids = {order["transaction_id"] for order in _orders(fleet_run["results"]) if order["slot"].endswith("10:00")}
    assert first_ids and all(per_decision[key] == 1 for key in per_decision if key[2] in first_ids)


def test_each_worker_handles_only_its_own_shard(fleet_run):
    handled = fleet_run["dispatcher"].store.worker_shards()
    by_name = {worker.split("@")[0]: shards for worker, shards in handled.items()}
    assert by_name == {"wa": {"shard-0"}, "wb": {"shard-1"}}
    queues = {queue for _, _, queue in fleet_run["sent"]}
    assert queues == {"shard-0", "shard-1"}


def test_the_workers_use_the_broker_and_never_log_its_password(fleet_run):
    """Each worker names the broker it was given, password masked (the RabbitMQ run's vhost user
    has one), and the password is in no log of the run."""
    shown = Connection(fleet_run["broker_url"]).as_uri()  # kombu's own redaction
    logs = {path.name: path.read_text() for path in fleet_run["tmp"].glob("*.log")}
    for name in ("wa.log", "wb.log"):
        assert re.search(rf"transport:\s+{re.escape(shown)}$", logs[name], re.MULTILINE), logs[name][:3000]
    password = urlsplit(fleet_run["broker_url"]).password
    if password:
        assert not [name for name, text in logs.items() if password in text]


def test_the_shard_queues_are_declared_for_the_broker(fleet_run):
    """Redis: kombu's bindings of both shard queues. RabbitMQ: quorum queues with the delivery
    limit; per-consumer prefetch (Celery saw the quorum queues: they refuse a global one) of one
    task per worker thread; heartbeats on the workers' connections; publisher confirms."""
    if fleet_run["broker"] == "redis":
        client = redis.Redis.from_url(fleet_run["broker_url"])
        assert client.exists("_kombu.binding.shard-0", "_kombu.binding.shard-1") == 2
        client.close()
        return
    vhost = urlsplit(fleet_run["broker_url"]).path.lstrip("/")
    queues = {queue["name"]: queue for queue in rabbitmq_list("queues", "name", "type", "arguments", vhost=vhost)}
    for name in ("shard-0", "shard-1"):
        assert queues[name]["type"] == "quorum"
        assert ["x-delivery-limit", "signedint", DELIVERY_LIMIT] in queues[name]["arguments"]
    consumers = rabbitmq_list("consumers", "queue_name", "prefetch_count", vhost=vhost)
    threads = int(os.environ.get("GSY_FLEET_WORKER_CONCURRENCY", "8"))  # as orchestrator.processes starts them
    shard_consumers = sorted(
        (c["queue_name"], c["prefetch_count"]) for c in consumers if c["queue_name"].startswith("shard-")
    )
    assert shard_consumers == [("shard-0", threads), ("shard-1", threads)]
    channels = [
        c for c in rabbitmq_list("channels", "vhost", "confirm", "global_prefetch_count") if c["vhost"] == vhost
    ]
    assert channels and all(channel["global_prefetch_count"] == 0 for channel in channels)
    assert any(channel["confirm"] for channel in channels)  # the dispatcher's
    connections = [c for c in rabbitmq_list("connections", "vhost", "timeout") if c["vhost"] == vhost]
    heartbeat = make_app(fleet_run["broker_url"]).conf.broker_heartbeat
    assert heartbeat > 0 and heartbeat in {connection["timeout"] for connection in connections}
