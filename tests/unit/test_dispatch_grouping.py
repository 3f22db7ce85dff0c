"""How the dispatcher turns an event into slice payloads, and a burst of them into messages. Pure."""

from gsy_e_sdk.wire.grid_tree import index_tree
from orchestrator.attach import AttachedAggregator
from orchestrator.batching import ShardBuffer
from orchestrator.dispatcher import slice_payload
from orchestrator.messages import SliceTask, slice_payloads
from orchestrator.sharding import Slice

TICK, MARKET = "workers.on_tick", "workers.on_market_slot"
KEY = b"k" * 32


def _slice(aggregator: str, shard: int, assets: int, event: str = "tick", completion: int = 10) -> dict:
    return SliceTask(
        fleet="f",
        aggregator=aggregator,
        aggregator_uuid=f"u-{aggregator}",
        slice=0,
        shard=shard,
        event=event,
        slot="2026-06-01T10:00",
        completion=completion,
        dispatched_at=0.0,
        transaction_id="t",
        assets=[{"uuid": f"{aggregator}-{i}", "name": f"a{i}", "kind": "Load"} for i in range(assets)],
    ).model_dump()


def _summary(messages) -> list[tuple[str, int, list[tuple[str, int]]]]:
    return [
        (name, shard, [(item["aggregator"], item["completion"]) for item in slices]) for name, shard, slices in messages
    ]


def test_a_burst_becomes_one_message_per_shard_and_event_kind_in_arrival_order():
    buffer = ShardBuffer(max_assets=100, max_age_s=1.0)
    burst = [
        (TICK, _slice("a", 0, 3)),
        (TICK, _slice("b", 1, 3)),
        (TICK, _slice("c", 0, 3)),
        (MARKET, _slice("d", 0, 2, "market", 0)),
        (TICK, _slice("a", 0, 3, completion=20)),
    ]
    assert not any(buffer.add(name, item, now=0.0) for name, item in burst)  # nothing full, nothing old
    assert _summary(buffer.drain()) == [
        (TICK, 0, [("a", 10), ("c", 10), ("a", 20)]),
        (TICK, 1, [("b", 10)]),
        (MARKET, 0, [("d", 0)]),
    ]
    assert not buffer and buffer.drain() == []


def test_a_full_shard_message_leaves_at_once_and_a_slice_is_never_split():
    buffer = ShardBuffer(max_assets=100, max_age_s=1.0)
    sent = []
    for name in "abcde":
        sent += buffer.add(TICK, _slice(name, 2, 40), now=0.0)
    # a+b = 80 assets; c would overflow 100, so a+b leave before c waits; the same for c+d and e.
    assert [[item["aggregator"] for item in slices] for _, _, slices in sent] == [["a", "b"], ["c", "d"]]
    sent = buffer.add(TICK, _slice("huge", 2, 150), now=0.0)  # bigger than a message: alone, whole, at once
    assert [[item["aggregator"] for item in slices] for _, _, slices in sent] == [["e"], ["huge"]]
    assert [len(slices[0]["assets"]) for _, _, slices in sent] == [40, 150]
    assert buffer.drain() == []


def test_a_burst_older_than_its_limit_is_sent_whole():
    buffer = ShardBuffer(max_assets=1000, max_age_s=0.05)
    assert buffer.add(TICK, _slice("a", 0, 1), now=10.0) == []
    assert buffer.add(TICK, _slice("b", 1, 1), now=10.02) == []
    assert _summary(buffer.add(TICK, _slice("c", 0, 1), now=10.06)) == [
        (TICK, 0, [("a", 10), ("c", 10)]),
        (TICK, 1, [("b", 10)]),
    ]
    assert not buffer


def test_a_slice_payload_is_exactly_what_the_worker_validates():
    tree = index_tree(
        {
            "root": {
                "area_uuid": "root",
                "current_market_fee": 2,
                "children": {
                    "pv": {"area_uuid": "pv", "asset_info": {"available_energy_kWh": 0.4, "energy_traded": 0.0}},
                    "load": {"area_uuid": "load", "asset_info": {"energy_requirement_kWh": 0.3}},
                    "bus": {"area_uuid": "bus", "asset_info": {"something": 1}},
                },
            }
        }
    )
    aggregator = AttachedAggregator(
        name="hh", uuid="agg", assets={"pv": "PV 1", "load": "Load 1", "bus": "Bus"}, markets={"root": "community"}
    )
    piece = Slice("hh", 0, 1, ("bus", "load", "pv"), ("root",))
    event = {"market_maker_rate": 30, "feed_in_tariff_rate": 5}
    payload = slice_payload("fleet", aggregator, piece, event, "market", "2026-06-01T10:00", 0, tree, 12.5, KEY)
    assert SliceTask.model_validate(payload).model_dump() == payload
    assert [(a["name"], a["kind"], a["fee_to_root"]) for a in payload["assets"]] == [
        ("Load 1", "Load", 2.0),
        ("PV 1", "PV", 2.0),
    ]
    assert [market["uuid"] for market in payload["markets"]] == ["root"]
    tick = slice_payload("fleet", aggregator, piece, event, "tick", "2026-06-01T10:00", 30, tree, 12.5, KEY)
    assert tick["markets"] == [] and len(tick["assets"]) == 2  # markets act on market events only

    # Each decision has its own id, the same every time, and only the fleet's key derives it.
    again = slice_payload("fleet", aggregator, piece, event, "tick", "2026-06-01T10:00", 30, tree, 99.0, KEY)
    other_key = slice_payload("fleet", aggregator, piece, event, "tick", "2026-06-01T10:00", 30, tree, 12.5, b"x" * 32)
    assert again["transaction_id"] == tick["transaction_id"] != payload["transaction_id"]
    assert other_key["transaction_id"] != tick["transaction_id"]
    empty = Slice("hh", 1, 0, ("bus",))
    assert slice_payload("fleet", aggregator, empty, event, "tick", "2026-06-01T10:00", 30, tree, 12.5, KEY) is None


def test_an_asset_below_a_market_without_a_fee_yet_has_no_fee_to_root():
    # REDIS.md 7.3: a market reports its fee only once it has a finished slot.
    tree = index_tree(
        {
            "root": {
                "current_market_fee": 2,
                "children": {
                    "house": {"children": {"load": {"asset_info": {"energy_requirement_kWh": 0.3}}}},
                    "flat": {
                        "current_market_fee": None,  # set later: no fee (0), not unknown
                        "children": {"heater": {"asset_info": {"energy_requirement_kWh": 0.2}}},
                    },
                    "pv": {"asset_info": {"available_energy_kWh": 0.4}},
                },
            }
        }
    )
    assert tree.fee_to_root("load") is None
    assert tree.fee_to_root("heater") == 2.0
    assert tree.fee_to_root("pv") == 2.0


def test_a_task_argument_is_one_slice_or_a_list():
    payload = _slice("a", 0, 1)
    assert slice_payloads(payload) == [payload]
    assert slice_payloads([payload, payload]) == [payload, payload]
