"""What one client can make the exchange hold or publish is bounded (issue 14, sections 2 and 3).

Pure tests drive a :class:`Simulation` through the channels it serves; the integration tests
flood a real exchange with garbage over real Redis and put garbage where the facade reads the
exchange's descriptor.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from gsy_e_sdk.wire import channels
from gsy_local_exchange import direct
from gsy_local_exchange.batch_answers import BatchLimits
from gsy_local_exchange.descriptor import DESCRIPTOR_KEY, read_descriptor
from gsy_local_exchange.redis_api import MAX_PAYLOAD_BYTES
from tests.integration.raw_client import RawClient
from tests.reliability.test_fuzz_exchange import (
    AGG,
    BATCH_CHANNEL,
    GOOD_ORDER,
    LOAD,
    RESPONSE_CHANNEL,
    controlled_simulation,
    step,
)

GOOD_BID = {**GOOD_ORDER["bid"][1], "replace_existing": False}


def _send(simulation, transaction_id: str, commands: dict, aggregator: str = AGG) -> list:
    return simulation.handle(
        BATCH_CHANNEL,
        {
            "type": "BATCHED",
            "transaction_id": transaction_id,
            "aggregator_uuid": aggregator,
            "batch_commands": commands,
        },
    )


def _answers(simulation) -> dict[str, str]:
    """Batch answers published by the next tick, by transaction id, as published."""
    return {
        json.loads(payload)["transaction_id"]: payload
        for name, payload in step(simulation).messages
        if name == RESPONSE_CHANNEL
    }


def _bids(simulation) -> int:
    return len(simulation.engine.areas[LOAD].bids)


def test_a_batch_over_the_command_limit_is_refused_whole() -> None:
    simulation = controlled_simulation()  # default limits
    limit = BatchLimits().max_commands
    assert limit == 10_000
    [(channel, reply)] = _send(simulation, "too-many", {LOAD: [GOOD_BID] + [{"type": "list_bids"}] * limit})
    envelope = json.loads(reply)
    assert channel == RESPONSE_CHANNEL and envelope["status"] == "error" and envelope["responses"] == {}
    assert "at most 10000 commands per batch" in envelope["message"]
    assert "--max-batch-commands" in envelope["message"] and "nothing was applied" in envelope["message"]
    # Areas listed without commands count too: each would get an entry in the answer.
    [(_, reply)] = _send(simulation, "too-many-areas", {f"area-{index}": [] for index in range(limit + 1)})
    assert json.loads(reply)["status"] == "error"
    assert _answers(simulation) == {} and _bids(simulation) == 0
    # At the limit the batch is applied.
    assert _send(simulation, "full", {LOAD: [GOOD_BID] + [{"type": "list_bids"}] * (limit - 1)}) == []
    envelope = json.loads(_answers(simulation)["full"])
    assert len(envelope["responses"][LOAD]) == limit and _bids(simulation) == 1


def test_the_command_limit_is_configurable() -> None:
    simulation = controlled_simulation(limits=BatchLimits(max_commands=2))
    [(_, reply)] = _send(simulation, "three", {LOAD: [GOOD_BID] * 3})
    assert "at most 2 commands per batch" in json.loads(reply)["message"]
    assert _send(simulation, "two", {LOAD: [GOOD_BID] * 2}) == []
    assert set(_answers(simulation)) == {"two"} and _bids(simulation) == 2


def test_kept_answers_are_bounded_in_bytes_and_republished_a_few_times() -> None:
    limits = BatchLimits(cache_bytes=2_000)
    simulation = controlled_simulation(limits=limits)
    for index in range(10):
        _send(simulation, f"b{index}", {LOAD: [GOOD_BID]})
    first = _answers(simulation)
    assert len(first) == 10 and _bids(simulation) == 10
    assert 500 < len(first["b9"]) < 1_000  # so the cache holds two or three of them
    assert simulation._answers.bytes <= limits.cache_bytes
    # The newest answer is published again, at most max_republish times.
    for _ in range(limits.max_republish):
        _send(simulation, "b9", {LOAD: [GOOD_BID]})
        assert _answers(simulation) == {"b9": first["b9"]}
    _send(simulation, "b9", {LOAD: [GOOD_BID]})
    _send(simulation, "b0", {LOAD: [GOOD_BID]})  # evicted: the oldest answer went first
    for again in (json.loads(payload) for payload in _answers(simulation).values()):
        assert again["status"] == "error" and again["responses"] == {}
        assert "already handled" in again["message"] and len(json.dumps(again)) < 400
    assert _bids(simulation) == 10  # never applied twice


def test_an_answer_too_large_for_redis_ends_the_execution_of_its_batch() -> None:
    simulation = controlled_simulation(limits=BatchLimits(max_answer_bytes=3_000))
    _send(simulation, "listing", {LOAD: [{"type": "device_info"}] * 20 + [GOOD_BID]})
    _send(simulation, "small", {LOAD: [GOOD_BID]})  # another batch has its own budget
    answers = {tid: json.loads(payload) for tid, payload in _answers(simulation).items()}
    entries = answers["listing"]["responses"][LOAD]
    executed = [entry for entry in entries if entry["status"] == "ready"]
    refused = [entry for entry in entries if entry["status"] == "error"]
    assert 5 < len(executed) < 20 and len(executed) + len(refused) == 21
    assert all(entry["message"].startswith("Not executed: the answer to this batch passed") for entry in refused)
    assert refused[-1]["command"] == "bid" and answers["small"]["responses"][LOAD][0]["status"] == "ready"
    assert _bids(simulation) == 1


def test_commands_waiting_for_the_tick_are_bounded_and_a_refused_batch_can_be_sent_again() -> None:
    simulation = controlled_simulation(limits=BatchLimits(max_queued_commands=4))
    assert _send(simulation, "first", {LOAD: [GOOD_BID] * 3}) == []
    [(_, reply)] = _send(simulation, "second", {LOAD: [GOOD_BID] * 2})
    assert json.loads(reply)["message"].startswith("Exchange busy: 3 commands already wait for the next tick")
    assert set(_answers(simulation)) == {"first"} and _bids(simulation) == 3
    assert _send(simulation, "second", {LOAD: [GOOD_BID] * 2}) == []  # not remembered as seen
    assert set(_answers(simulation)) == {"second"} and _bids(simulation) == 5


def test_batches_for_unknown_aggregators_are_not_counted_per_uuid() -> None:
    simulation = controlled_simulation()
    for index in range(100):
        _send(simulation, "t", {LOAD: [GOOD_BID]}, aggregator=f"nobody-{index}")
    assert set(simulation.batches_received) <= {AGG}


def test_direct_requests_waiting_for_the_tick_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(direct, "MAX_QUEUED_REQUESTS", 2)
    simulation = controlled_simulation()
    simulation.handle("pv/register_participant", {"transaction_id": "r"})
    replies = [simulation.handle("pv/list_offers", {"transaction_id": f"l{index}"}) for index in range(3)]
    assert replies[:2] == [[], []]
    [(channel, reply)] = replies[2]
    assert channel == "pv/response/list_offers" and json.loads(reply)["status"] == "error"
    assert "Exchange busy" in json.loads(reply)["error_message"] and json.loads(reply)["transaction_id"] == "l2"


GARBAGE = [
    b"[" * 3000 + b"]" * 3000,
    b"\xff\xfe\x80 not utf-8",
    b"[1, 2]",
    b'"a string"',
    b'{"aggregator_uuid": [], "transaction_id": {"x": 1}, "batch_commands": 5}',
    b"{truncated",
]


@pytest.mark.integration
def test_a_flood_of_garbage_neither_stalls_the_exchange_nor_floods_its_log(start_exchange, redis_url: str) -> None:
    exchange = start_exchange(
        "external_devices.json", "--duration", "4h", "--tick-length", "90s", "--pace", "4", "--start-when-selected", "1"
    )
    aggregator = str(uuid.uuid4())
    events = channels.aggregator_events(aggregator)
    client = RawClient(redis_url)
    try:
        client.request(
            channels.AGGREGATOR_COMMANDS,
            {"name": "a", "type": "CREATE", "transaction_id": aggregator},
            channels.AGGREGATOR_RESPONSE,
        )
        load = client.request(channels.register("load"), {"name": "load"}, channels.register_response("load"))
        client.request(
            channels.AGGREGATOR_COMMANDS,
            {"aggregator_uuid": aggregator, "type": "SELECT", "device_uuid": load["device_uuid"]},
            channels.AGGREGATOR_RESPONSE,
        )
        client.wait_for(lambda ch, data: ch == events and data.get("event") == "market")
    finally:
        client.close()  # it reads every channel and could not decode the garbage itself
    publisher = redis.Redis.from_url(redis_url)
    pipe = publisher.pipeline(transaction=False)
    for _ in range(250):
        for channel in (
            BATCH_CHANNEL,
            channels.AGGREGATOR_COMMANDS,
            channels.register("pv"),
            channels.area_command("pv", "offer"),
        ):
            for payload in GARBAGE:
                pipe.publish(channel, payload)
        pipe.execute()
    publisher.publish(BATCH_CHANNEL, b" " * (MAX_PAYLOAD_BYTES + 1))
    publisher.close()
    flooded = time.monotonic()
    client = RawClient(redis_url)
    try:
        answer = client.request(channels.register("pv"), {"name": "pv"}, channels.register_response("pv"))
        assert answer["registered"] is True and time.monotonic() - flooded < 10
        client.wait_for(lambda ch, data: ch == events and data.get("event") == "tick", timeout=10)
        assert exchange.alive()
    finally:
        client.close()
    log = exchange.output()
    dropped = [line for line in log.splitlines() if "ignored a message" in line or "dropped a" in line]
    assert 0 < len(dropped) <= 30, len(dropped)  # 6,000 garbage messages, a few log lines
    assert "Redis connection lost" not in log


@pytest.mark.integration
def test_an_unreadable_descriptor_reads_as_no_exchange(redis_url: str) -> None:
    """The facade reads the exchange's descriptor from a Redis key: garbage there is no descriptor, not a crash."""
    client = redis.Redis.from_url(redis_url)
    previous = client.get(DESCRIPTOR_KEY)
    try:
        for garbage in [*GARBAGE, b"{}", b'{"simulation_id": ["x"], "run_id": 1, "nodes": 5}']:
            client.set(DESCRIPTOR_KEY, garbage)
            assert read_descriptor(client) is None
    finally:
        if previous:
            client.set(DESCRIPTOR_KEY, previous)
        else:
            client.delete(DESCRIPTOR_KEY)
        client.close()
