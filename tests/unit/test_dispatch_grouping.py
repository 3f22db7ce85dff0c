"""How a burst of slice tasks becomes Celery messages: one per shard and event kind, in order."""

from orchestrator.dispatcher import Outgoing, group_by_message
from orchestrator.messages import AssetItem, SliceTask, slice_payloads


def _slice(aggregator: str, shard: int, assets: int, event: str = "tick", completion: int = 10) -> SliceTask:
    return SliceTask(fleet="f", aggregator=aggregator, aggregator_uuid=f"u-{aggregator}", slice=0, shard=shard,
                     event=event, slot="2026-06-01T10:00", completion=completion, dispatched_at=0.0,
                     assets=[AssetItem(uuid=f"{aggregator}-{i}", name=f"a{i}", kind="Load") for i in range(assets)])


def _name(task: SliceTask) -> str:
    return {"market": "workers.on_market_slot", "tick": "workers.on_tick"}[task.event]


def test_one_message_per_shard_and_event_kind_keeping_arrival_order():
    burst = [_slice("a", 0, 3), _slice("b", 1, 3), _slice("c", 0, 3), _slice("d", 0, 2, "market", 0),
             _slice("a", 0, 3, completion=20)]
    messages = group_by_message([Outgoing(_name(task), task) for task in burst])
    summary = [(name, shard, [(task.aggregator, task.completion) for task in tasks]) for name, shard, tasks in messages]
    assert summary == [("workers.on_tick", 0, [("a", 10), ("c", 10), ("a", 20)]),
                       ("workers.on_tick", 1, [("b", 10)]),
                       ("workers.on_market_slot", 0, [("d", 0)])]


def test_a_big_shard_burst_is_cut_by_assets_but_a_slice_is_never_split():
    burst = [_slice(name, 2, 40) for name in "abcde"] + [_slice("huge", 2, 150)]
    messages = group_by_message([Outgoing(_name(task), task) for task in burst], max_assets=100)
    assert [[task.aggregator for task in tasks] for _, _, tasks in messages] == [["a", "b"], ["c", "d"], ["e"], ["huge"]]
    assert sum(len(tasks) for _, _, tasks in messages) == len(burst)


def test_a_task_argument_is_one_slice_or_a_list():
    payload = _slice("a", 0, 1).model_dump()
    assert slice_payloads(payload) == [payload]
    assert slice_payloads([payload, payload]) == [payload, payload]
