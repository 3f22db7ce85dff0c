"""A worker task carrying a shard's burst of slices, against a real Redis.

One malformed slice is skipped alone; every other slice's batch is published under its own
transaction id, and their states, last events and counters land in Redis.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
import yaml

from gsy_e_sdk.wire import channels
from orchestrator import worker_context
from orchestrator.messages import SliceTask
from orchestrator.state import StateStore
from workers.tasks import handle_slices

pytestmark = pytest.mark.integration

SLOT = "2026-06-01T10:00"


def _slice(aggregator: str, index: int, completion: int, load: str) -> dict:
    return SliceTask(
        fleet="batch-test",
        aggregator=aggregator,
        aggregator_uuid=f"uuid-{aggregator}",
        slice=index,
        shard=1,
        event="tick",
        slot=SLOT,
        completion=completion,
        market_maker_rate=30,
        dispatched_at=time.time(),
        transaction_id=f"t-{aggregator}-{index}-{completion}",
        assets=[
            {
                "uuid": f"id-{load}",
                "name": load,
                "kind": "Load",
                "info": {
                    "energy_requirement_kWh": 0.5,
                    "energy_active_in_bids": 0.0,
                    "energy_traded": 0.0,
                    "total_cost": 0.0,
                },
            }
        ],
    ).model_dump()


@pytest.fixture()
def worker_env(redis_url, tmp_path, monkeypatch):
    config = tmp_path / "fleet.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "batch-test",
                "aggregators": [{"name": "a", "assets": ["Load *"]}],
                "strategies": {"Load": {"name": "price_ramp"}},
            }
        )
    )
    monkeypatch.setenv("GSY_FLEET_CONFIG", str(config))
    monkeypatch.setenv("REDIS_URL", redis_url)
    worker_context.forget_context()
    client = redis.Redis.from_url(redis_url)
    store = StateStore(client, "batch-test")
    store.reset()
    yield client, store
    worker_context.forget_context()
    store.reset()


def test_a_burst_of_slices_is_decided_and_published_and_a_bad_slice_fails_alone(worker_env, caplog):
    client, store = worker_env
    first, second = _slice("a", 0, 20, "Load 1"), _slice("b", 3, 20, "Load 2")
    pubsub = client.pubsub()
    pubsub.subscribe(channels.batch_commands())
    pubsub.get_message(timeout=2)  # the subscription confirmation
    broken = [{"aggregator": "broken"}, {**first, "assets": 5}, "not a slice"]
    summaries = handle_slices([first, *broken, second], worker="w1")
    envelopes = []
    deadline = time.monotonic() + 5
    while len(envelopes) < 2 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "message":
            envelopes.append(json.loads(message["data"]))
    pubsub.close()

    assert [(s["aggregator"], s["slice"], s["commands"]) for s in summaries] == [("a", 0, 1), ("b", 3, 1)]
    assert "skipped a malformed slice" in caplog.text
    expected = {first["transaction_id"]: "uuid-a", second["transaction_id"]: "uuid-b"}
    assert {e["transaction_id"]: e["aggregator_uuid"] for e in envelopes} == expected
    assert all(e["type"] == "BATCHED" and len(e["batch_commands"]) == 1 for e in envelopes)
    bid = envelopes[0]["batch_commands"]["id-Load 1"][0]
    # Spot orders name no slot: the reference exchange crashes on a time_slot string (REDIS.md 11.1).
    assert bid["type"] == "bid" and bid["time_slot"] is None and bid["energy"] == pytest.approx(0.5)
    states, _ = store.load(["id-Load 1", "id-Load 2"])
    assert set(states) == {"id-Load 1", "id-Load 2"}
    assert store.last_slice("uuid-b", 3) == second  # what an operator's resync re-decides from
    counters = store.counters()
    assert (counters["tasks_done"], counters["slices_done"], counters["commands_submitted"]) == (1, 2, 2)
    assert store.worker_shards() == {"w1": {"shard-1"}}


def test_slices_of_a_closed_slot_are_dropped_before_anything_is_sent(worker_env, caplog):
    """Without a time_slot a late batch would land in the next slot: the worker drops it instead."""
    client, store = worker_env
    pubsub = client.pubsub()
    pubsub.subscribe(channels.batch_commands())
    pubsub.get_message(timeout=2)
    store.set_current_slot("2026-06-01T10:15")  # the dispatcher saw the next slot open
    late, current = _slice("a", 0, 90, "Load 1"), {**_slice("b", 1, 0, "Load 2"), "slot": "2026-06-01T10:15"}
    with caplog.at_level("INFO"):
        summaries = handle_slices([late, current], worker="w1")
    published = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(published) < 2:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "message":
            published.append(json.loads(message["data"]))
    pubsub.close()
    assert [(s["aggregator"], s["slot"]) for s in summaries] == [("b", "2026-06-01T10:15")]
    assert [envelope["aggregator_uuid"] for envelope in published] == ["uuid-b"]
    assert store.counters()["stale_slices_dropped"] == 1
    assert "slot that has closed" in caplog.text
    # A task of stale slices only is still a task done, or a drain waiting for every task never ends.
    assert handle_slices([late], worker="w1") == []
    counters = store.counters()
    assert (counters["tasks_done"], counters["slices_done"], counters["stale_slices_dropped"]) == (2, 1, 2)
