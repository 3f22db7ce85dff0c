"""The dispatcher: exchange events in, one Celery task per aggregator slice out.

The SDK's reader thread only queues events; this loop turns each into slice tasks carrying just
the assets of that slice (their ``asset_info`` and path fee) and the market data they need, and
sends them to the slice's shard queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery

from gsy_e_sdk.redis_connection import RedisConnection
from orchestrator.attach import AttachedAggregator
from orchestrator.exchange_link import ExchangeLink, make_link
from orchestrator.config import FleetConfig
from orchestrator.grid_view import asset_kind, index_tree
from orchestrator.messages import AssetItem, MarketItem, SliceTask
from orchestrator.sharding import Slice, plan_slices, queue_name
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

TASK_FOR_EVENT = {"market": "workers.on_market_slot", "tick": "workers.on_tick",
                  "trade": "workers.on_trade", "finish": "workers.on_finish"}


def task_argsrepr(task: SliceTask) -> str:
    """What Flower shows as the task's args: which slice, shard, slot and tick, not the whole payload.

    Most telling first, since Flower's tasks table cuts args at about 45 characters, e.g.
    ``households[1] shard-1 market slot=2026-06-01T10:00 tick=0% assets=6``.
    """
    counts = [f"{label}={len(items)}" for label, items in
              (("assets", task.assets), ("markets", task.markets), ("trades", task.trades)) if items]
    return " ".join([f"{task.aggregator}[{task.slice}]", queue_name(task.shard), task.event,
                     f"slot={task.slot}", f"tick={task.completion}%", *counts])


class Dispatcher:
    def __init__(self, config: FleetConfig, connection: RedisConnection, app: Celery,
                 on_slot: Callable[[str], None] | None = None, link: ExchangeLink | None = None) -> None:
        """``connection`` is the Redis holding the fleet's state (the exchange's, in Redis mode)."""
        self.config = config
        self.connection = connection
        self.app = app
        self.link = link or make_link(config, connection)
        self.store = StateStore(connection.redis, config.name)
        self.aggregators: list[AttachedAggregator] = []
        self.slices: dict[str, list[Slice]] = {}
        self.finished: set[str] = set()
        self.slots_seen: list[str] = []
        self.tasks_sent = 0
        self._on_slot = on_slot
        self._events: queue.Queue[tuple[AttachedAggregator, dict, float]] = queue.Queue()
        self._last_tick: dict[str, tuple[str, int]] = {}
        self._kinds: dict[str, str] = {}

    def start(self, fresh: bool = False) -> None:
        """Attach the fleet and start listening; raises FleetConfigError before anything runs.

        ``fresh`` starts a new run: the fleet's metrics are cleared and tasks an interrupted run
        left in the shard queues are dropped (a restarted dispatcher keeps both).
        """
        self.aggregators = self.link.attach()
        if fresh:
            self.store.reset()
            self.app.control.purge()
        for aggregator in self.aggregators:
            self.slices[aggregator.uuid] = plan_slices(
                aggregator.name, list(aggregator.assets), list(aggregator.markets), self.config.shards,
                self.config.max_assets_per_task)
        for aggregator in self.aggregators:
            self.link.listen(aggregator, self._queue_handler(aggregator), self._count_answers)
        self.store.meta("aggregators", {a.name: a.uuid for a in self.aggregators})
        self.store.meta("slices", {a.name: [[s.index, s.shard, len(s.assets)] for s in self.slices[a.uuid]]
                                   for a in self.aggregators})
        self.store.meta("placements", self._placements())

    def _placements(self) -> dict[str, dict[str, Any]]:
        """Device name -> where it lives, so operators can route commands to the owning shard."""
        placements = {}
        for aggregator in self.aggregators:
            for piece in self.slices[aggregator.uuid]:
                for devices, is_market in ((piece.assets, False), (piece.markets, True)):
                    names = aggregator.markets if is_market else aggregator.assets
                    for device in devices:
                        placements[names[device]] = {"uuid": device, "aggregator": aggregator.name,
                                                     "aggregator_uuid": aggregator.uuid, "slice": piece.index,
                                                     "shard": piece.shard, "market": is_market}
        return placements

    def _queue_handler(self, aggregator: AttachedAggregator):
        def handler(payload: dict[str, Any]) -> None:
            self._events.put((aggregator, payload, time.time()))
        return handler

    def _count_answers(self, envelope: dict[str, Any]) -> None:
        """Over REST the batch answers reach the dispatcher's sockets, not the workers."""
        statuses = [entry.get("status") for entries in (envelope.get("responses") or {}).values()
                    for entry in entries if isinstance(entry, dict)]
        accepted = sum(status == "ready" for status in statuses)
        self.store.incr("commands_accepted", accepted)
        self.store.incr("commands_rejected", len(statuses) - accepted)

    @property
    def done(self) -> bool:
        return bool(self.aggregators) and len(self.finished) == len(self.aggregators)

    def run(self, stop: threading.Event | None = None) -> None:
        """Dispatch until every aggregator received ``finish`` (or ``stop`` is set)."""
        while not self.done and not (stop and stop.is_set()):
            try:
                aggregator, payload, received = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.dispatch(aggregator, payload, received)
            except Exception:  # noqa: BLE001 - one bad event must not stop the fleet
                logger.exception("could not dispatch an event of %s", aggregator.name)

    def dispatch(self, aggregator: AttachedAggregator, payload: dict[str, Any], received: float) -> int:
        event = payload.get("event")
        if event not in TASK_FOR_EVENT:
            return 0
        completion = int(str(payload.get("slot_completion", "0%")).rstrip("%") or 0)
        slot = payload.get("market_slot")
        if event == "tick" and completion < 10:
            return 0  # the slot's market event already covers 0 %
        if event == "market":
            self._note_slot(slot)
        if event in ("market", "tick"):
            self._check_sequence(aggregator, slot, completion, event)
        if event == "finish":
            self.finished.add(aggregator.uuid)
        tree = index_tree(payload.get("grid_tree") or {})
        sent = 0
        for piece in self.slices[aggregator.uuid]:
            task = self._slice_task(aggregator, piece, payload, event, slot, completion, tree, received)
            if task is None:
                continue
            self.app.send_task(TASK_FOR_EVENT[event], args=[task.model_dump()], queue=piece.queue,
                               argsrepr=task_argsrepr(task))
            sent += 1
        self.tasks_sent += sent
        return sent

    def _slice_task(self, aggregator, piece: Slice, payload, event, slot, completion, tree, received) -> SliceTask | None:
        base = dict(fleet=self.config.name, aggregator=aggregator.name, aggregator_uuid=aggregator.uuid,
                    slice=piece.index, shard=piece.shard, event=event, slot=slot, completion=completion,
                    market_maker_rate=payload.get("market_maker_rate"),
                    feed_in_tariff_rate=payload.get("feed_in_tariff_rate"), dispatched_at=received)
        if event == "trade":
            members = set(piece.assets)
            trades = [trade for trade in payload.get("trade_list", []) if trade.get("asset_id") in members]
            return SliceTask(**base, trades=trades) if trades else None
        if event == "finish":
            return SliceTask(**base)
        assets = []
        for device in piece.assets:
            node = tree.nodes.get(device)
            info = node.get("asset_info") if node else None
            kind = asset_kind(info) if info else None
            if kind is None:
                continue
            assets.append(AssetItem(uuid=device, name=aggregator.assets[device], kind=kind, info=info,
                                    fee_to_root=tree.fee_to_root(device)))
        markets = []
        for device in piece.markets:
            node = tree.nodes.get(device)
            if node is None or event != "market":
                continue
            markets.append(MarketItem(uuid=device, name=node.get("area_name", aggregator.markets[device]),
                                      last_market_stats=node.get("last_market_stats") or {},
                                      current_market_fee=node.get("current_market_fee"),
                                      last_market_fee=node.get("last_market_fee")))
        if not assets and not markets:
            return None
        self._note_kinds(assets)
        return SliceTask(**base, assets=assets, markets=markets)

    def _note_kinds(self, assets: list[AssetItem]) -> None:
        """Publish asset kinds as they become known (operators validate parameters by kind)."""
        new = {asset.uuid: asset.kind for asset in assets if self._kinds.get(asset.uuid) != asset.kind}
        if new:
            self._kinds.update(new)
            self.store.meta("kinds", self._kinds)

    def _note_slot(self, slot: str | None) -> None:
        if slot and (not self.slots_seen or self.slots_seen[-1] != slot):
            self.slots_seen.append(slot)
            if self._on_slot:
                self._on_slot(slot)

    def _check_sequence(self, aggregator: AttachedAggregator, slot: str, completion: int, event: str) -> None:
        """Count events the dispatcher never saw (a gap in the 10 % sequence of a slot)."""
        previous = self._last_tick.get(aggregator.uuid)
        self._last_tick[aggregator.uuid] = (slot, completion)
        if previous is None or event == "market":
            return
        last_slot, last_completion = previous
        if last_slot == slot and completion > last_completion + 10:
            missed = (completion - last_completion) // 10 - 1
            self.store.incr("missed_events", missed)
            logger.warning("%s: missed %d tick event(s) before %s %d%%", aggregator.name, missed, slot, completion)
