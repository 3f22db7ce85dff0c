"""The single-process baseline of ``benchmarks/fleet.py``: the fleet's strategies, one process.

One ``RedisAggregator`` per fleet aggregator, all in this process on the SDK's one connection,
each running exactly the workers' decision code (``workers.tasks.decide_slice``) on its own
assets at every market and tick event and sending one batch through its command buffer. State
lives in memory. This is what a user would write without the orchestrator.

    python benchmarks/baseline.py --config fleet.yaml --redis-url redis://...
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import Any

from gsy_e_sdk.redis_aggregator import RedisAggregator
from gsy_e_sdk.wire.grid_tree import asset_kind, index_tree
from gsy_e_sdk.wire.redis_connection import get_connection
from gsy_e_sdk.wire.times import parse_completion
from orchestrator.attach import AttachedAggregator, FleetAttacher
from orchestrator.config import FleetConfig, load_fleet_config
from orchestrator.messages import AssetItem, SliceTask
from orchestrator.worker_context import WorkerContext
from workers.tasks import decide_slice

logger = logging.getLogger("baseline")


class _MemoryStore:
    """The worker's state store, in memory (the baseline has one process)."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}

    def load(self, uuids: list[str]) -> tuple[dict[str, dict], dict[str, dict]]:
        return {uuid: self.states[uuid] for uuid in uuids if uuid in self.states}, {}


class StrategyAggregator(RedisAggregator):
    def __init__(self, attached: AttachedAggregator, config: FleetConfig, redis_url: str) -> None:
        self.attached = attached
        self.context = WorkerContext(config, connection=None, store=_MemoryStore(), link=None)
        self.fleet = config.name
        self.batches = 0
        super().__init__(
            attached.name, redis_url=redis_url, aggregator_uuid=attached.uuid, device_uuids=list(attached.assets)
        )

    def on_market_slot(self, market_info: dict[str, Any]) -> None:
        self._act(market_info)

    def on_tick(self, tick_info: dict[str, Any]) -> None:
        self._act(tick_info)

    def _act(self, message: dict[str, Any]) -> None:
        tree = index_tree(message.get("grid_tree") or {})
        assets = []
        for device, name in self.attached.assets.items():
            node = tree.nodes.get(device)
            info = node.get("asset_info") if node else None
            kind = asset_kind(info) if info else None
            if kind is not None:
                assets.append(
                    AssetItem(uuid=device, name=name, kind=kind, info=info, fee_to_root=tree.fee_to_root(device))
                )
        task = SliceTask(
            fleet=self.fleet,
            aggregator=self.aggregator_name,
            aggregator_uuid=self.aggregator_uuid,
            slice=0,
            shard=0,
            event=message["event"],
            slot=message.get("market_slot"),
            completion=parse_completion(message.get("slot_completion")),
            market_maker_rate=message.get("market_maker_rate"),
            feed_in_tariff_rate=message.get("feed_in_tariff_rate"),
            dispatched_at=time.time(),
            transaction_id="",
            assets=assets,
        )
        batch, states, _ = decide_slice(task, self.context)
        self.context.store.states.update(states)
        buffer = self.add_to_batch_commands
        for uuid, commands in batch.items():
            for command in commands:
                kind = command["type"]
                if kind in ("offer", "bid"):
                    add = buffer.offer_energy if kind == "offer" else buffer.bid_energy
                    add(
                        uuid,
                        command["energy"],
                        command["price"],
                        command.get("replace_existing", True),
                        command.get("time_slot"),
                    )
                elif kind == "delete_offer":
                    buffer.delete_offer(uuid, None, command.get("time_slot"))
                elif kind == "delete_bid":
                    buffer.delete_bid(uuid, None, command.get("time_slot"))
        if self.commands_buffer_length:
            # Not blocking, as the fleet's workers: the exchange answers at its next tick, which
            # waits for every aggregator; blocking hooks on a 5-thread executor would hold it up.
            self.execute_batch_commands(is_blocking=False)
            self.batches += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_fleet_config(args.config)
    attached = FleetAttacher(config, get_connection(args.redis_url)).attach()
    aggregators = [StrategyAggregator(entry, config, args.redis_url) for entry in attached]
    print(f"baseline ready: {len(aggregators)} aggregators", flush=True)
    done = threading.Event()
    while not done.wait(0.2):
        if all(aggregator.is_finished for aggregator in aggregators):
            done.set()
    for aggregator in aggregators:
        aggregator.wait_for_hooks(30)
    print(f"baseline finished: {sum(a.batches for a in aggregators)} batches", flush=True)


if __name__ == "__main__":
    main()
