"""Celery tasks: one event for one slice of an aggregator -> strategies -> one batch.

A strategy that raises for one asset skips that asset for this event (logged with its
traceback); the rest of the slice is still submitted. The batch's transaction id is derived
from (aggregator, slot, event, completion, slice), so a redelivered task re-sends the same id
and the exchange answers it again instead of placing the orders twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from orchestrator.celery_app import app
from orchestrator.messages import SliceTask
from orchestrator.worker_context import WorkerContext, context
from workers.strategies.base import AssetView, MarketNodeView, MarketView

logger = logging.getLogger(__name__)
ORDER_TYPES = ("offer", "bid")


def _market_view(task: SliceTask, fee_to_root: float = 0.0) -> MarketView:
    return MarketView(event=task.event, slot=task.slot or "", completion=task.completion,
                      market_maker_rate=task.market_maker_rate, feed_in_tariff_rate=task.feed_in_tariff_rate,
                      fee_to_root=fee_to_root)


def decide_slice(task: SliceTask, ctx: WorkerContext) -> tuple[dict[str, list[dict]], dict[str, dict], int]:
    """Run every asset's and market's strategy; returns (batch, new states, assets skipped).

    Operator controls apply here: a paused asset is left out, and changed parameters override
    the fleet file's for that asset.
    """
    states, controls = ctx.store.load([asset.uuid for asset in task.assets] + [market.uuid for market in task.markets])
    batch: dict[str, list[dict]] = {}
    new_states: dict[str, dict] = {}
    skipped = 0
    for asset in task.assets:
        control = controls.get(asset.uuid, {})
        if control.get("paused"):
            continue
        strategy = ctx.strategy(asset.name, asset.kind, control.get("params"))
        if strategy is None:
            continue
        spec, params = strategy
        view = AssetView(uuid=asset.uuid, name=asset.name, kind=asset.kind, info=asset.info)
        try:
            decision = spec.decide(view, _market_view(task, asset.fee_to_root), params, states.get(asset.uuid, {}))
        except Exception:  # noqa: BLE001 - one asset's failure must not sink the slice
            logger.exception("strategy %s failed for asset %s; skipped for this event", spec.name, asset.name)
            skipped += 1
            continue
        if decision.commands:
            # Pin orders to the event's slot: a late batch can never spill into the next slot.
            batch[asset.uuid] = [dict(command, time_slot=task.slot) if command.get("type") in ORDER_TYPES
                                 else command for command in decision.commands]
        new_states[asset.uuid] = decision.state
    for market in task.markets:
        control = controls.get(market.uuid, {})
        if control.get("paused"):
            continue
        strategy = ctx.strategy(market.name, "Market", control.get("params"))
        if strategy is None:
            continue
        spec, params = strategy
        node = MarketNodeView(uuid=market.uuid, name=market.name, last_market_stats=market.last_market_stats,
                              current_market_fee=market.current_market_fee, last_market_fee=market.last_market_fee)
        try:
            decision = spec.decide(node, _market_view(task), params, states.get(market.uuid, {}))
        except Exception:  # noqa: BLE001
            logger.exception("strategy %s failed for market %s; skipped for this event", spec.name, market.name)
            skipped += 1
            continue
        if decision.commands:
            batch[market.uuid] = decision.commands
        new_states[market.uuid] = decision.state
    return batch, new_states, skipped


def handle_event(payload: dict[str, Any], worker: str = "", transaction_id: str | None = None) -> dict[str, Any]:
    """Decide and submit one slice's batch; ``transaction_id`` replaces the event's (resync)."""
    task = SliceTask.model_validate(payload)
    ctx = context()
    batch, new_states, skipped = decide_slice(task, ctx)
    submitted = sum(len(commands) for commands in batch.values())
    # Not waiting for the answer: the exchange executes batches at its next tick, which (at fast
    # pace) waits for every aggregator's batch, so a worker thread blocked here would hold back
    # the very tick that answers it. The dispatcher counts the answers as they arrive.
    ctx.submit(task.aggregator_uuid, batch, transaction_id or task.transaction_id())
    ctx.store.save(new_states, (task.aggregator_uuid, task.slice, payload))
    latency = time.time() - task.dispatched_at
    ctx.store.record_task(task.shard, submitted, skipped, worker)
    return {"aggregator": task.aggregator, "slot": task.slot, "event": task.event, "completion": task.completion,
            "slice": task.slice, "shard": task.shard, "commands": submitted, "skipped": skipped,
            "sent_after_s": round(latency, 4)}


@app.task(name="workers.on_market_slot", bind=True)
def on_market_slot(self, payload: dict[str, Any]) -> dict[str, Any]:
    return handle_event(payload, self.request.hostname or "")


@app.task(name="workers.on_tick", bind=True)
def on_tick(self, payload: dict[str, Any]) -> dict[str, Any]:
    return handle_event(payload, self.request.hostname or "")


@app.task(name="workers.on_finish")
def on_finish(payload: dict[str, Any]) -> dict[str, Any]:
    task = SliceTask.model_validate(payload)
    context().store.incr("finished_slices")
    context().store.incr("tasks_done")
    return {"aggregator": task.aggregator, "slice": task.slice, "finished": True}
