"""Celery tasks: a shard's burst of aggregator slices -> strategies -> one batch per slice.

A task carries the slices one shard got from a burst of exchange events (or one slice, a dict).
Their states and controls are read in one round trip, their batches published in one and their
new states written in one. A strategy that raises for one asset skips that asset for this event
(logged with its traceback); a malformed slice is skipped alone. Each batch's transaction id was
derived by the dispatcher from (aggregator, slot, event, completion, slice) and travels in the
slice, so a redelivered task re-sends the same ids and the exchange answers them again instead
of placing the orders twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from celery import shared_task
from celery.signals import worker_ready
from pydantic import BaseModel, ValidationError

from gsy_e_sdk.wire.command_params import describe
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from orchestrator.messages import SliceTask, slice_payloads
from orchestrator.worker_context import WorkerContext, context
from workers.commands import wire_command
from workers.strategies import StrategySpec
from workers.strategies.base import MARKET, AssetView, MarketNodeView, MarketView, StrategyState

logger = logging.getLogger(__name__)
bad_states = RateLimitedLog(logger)


def _market_view(task: SliceTask, fee_to_root: float | None = None) -> MarketView:
    return MarketView(
        event=task.event,
        slot=task.slot or "",
        completion=task.completion,
        market_maker_rate=task.market_maker_rate,
        feed_in_tariff_rate=task.feed_in_tariff_rate,
        fee_to_root=fee_to_root,
    )


def _devices(task: SliceTask) -> list[str]:
    return [asset.uuid for asset in task.assets] + [market.uuid for market in task.markets]


Batch = dict[str, list[dict[str, Any]]]  # device uuid -> wire commands (REDIS.md 6.2)


class SliceDecision(NamedTuple):
    batch: Batch  # what to submit for the slice's aggregator
    states: dict[str, dict]  # new strategy state per device that decided, as stored
    skipped: int  # devices whose strategy raised (logged), left out of the batch


def load_state(spec: StrategySpec, stored: Any, device: str) -> StrategyState:
    """The stored JSON of a device's state as the strategy's model.

    Nothing stored, or a state the model cannot read (another version's, garbage): a fresh
    state, the latter logged (rate-limited), so a bad entry in Redis never stops a worker.
    """
    if not stored or not spec.keeps_state:
        return spec.fresh_state
    try:
        return spec.state_model.model_validate(stored)
    except ValidationError as exc:
        bad_states.warning(
            "stored state of %s unreadable for strategy %s (%s); starting afresh", device, spec.name, describe(exc)
        )
        return spec.fresh_state


def _decide(
    spec: StrategySpec, view: AssetView | MarketNodeView, market: MarketView, params: BaseModel, stored: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """(wire commands, state to store) of one device, or None when its strategy raised (logged)."""
    try:
        decision = spec.decide(view, market, params, load_state(spec, stored, view.name))
        # Spot orders go out with ``"time_slot": null`` (see wire_command); a late decision is
        # kept out of the next slot by ``slot_closed`` instead.
        stored_state = decision.state.model_dump() if spec.keeps_state else {}
        return [wire_command(command) for command in decision.commands], stored_state
    except Exception:
        logger.exception("strategy %s failed for %s; skipped for this event", spec.name, view.name)
        return None


def decide_slice(
    task: SliceTask, ctx: WorkerContext, loaded: tuple[dict[str, dict], dict[str, dict]] | None = None
) -> SliceDecision:
    """Run every asset's and market's strategy for one slice.

    ``loaded`` is (states, controls) already read for these devices; else they are read here.
    Operator controls apply here: a paused asset is left out, and changed parameters override
    the fleet file's for that asset. States are typed only between here and the strategy.
    """
    states, controls = loaded if loaded is not None else ctx.store.load(_devices(task))
    views: list[tuple[AssetView | MarketNodeView, str, MarketView]] = [
        (
            AssetView(uuid=asset.uuid, name=asset.name, kind=asset.kind, info=asset.info),
            asset.kind,
            _market_view(task, asset.fee_to_root),
        )
        for asset in task.assets
    ]
    views += [
        (
            MarketNodeView(
                uuid=market.uuid,
                name=market.name,
                last_market_stats=market.last_market_stats,
                current_market_fee=market.current_market_fee,
                last_market_fee=market.last_market_fee,
            ),
            MARKET,
            _market_view(task),
        )
        for market in task.markets
    ]
    batch: Batch = {}
    new_states: dict[str, dict] = {}
    skipped = 0
    for view, kind, market_view in views:
        control = controls.get(view.uuid, {})
        if control.get("paused"):
            continue
        strategy = ctx.strategy(view.name, kind, control.get("params"))
        if strategy is None:
            continue
        spec, params = strategy
        decided = _decide(spec, view, market_view, params, states.get(view.uuid))
        if decided is None:
            skipped += 1
            continue
        commands, new_states[view.uuid] = decided
        if commands:
            batch[view.uuid] = commands
    return SliceDecision(batch, new_states, skipped)


def slot_closed(task: SliceTask, current_slot: str | None) -> bool:
    """True when the exchange has opened a later slot than the one this market/tick task decides.

    Spot orders carry no time_slot (see ``decide_slice``), and the exchange applies a batch at
    its next tick, so a decision sent after its slot closed would land in the next slot with
    the last slot's energy and prices. Such a task is dropped instead; the next slot's own
    events decide afresh. Slots are "YYYY-MM-DDTHH:mm" strings, which order as times do.
    """
    if task.event == "finish" or not task.slot or not current_slot:
        return False
    return task.slot < current_slot


class _Decided(NamedTuple):
    payload: dict[str, Any]  # kept for the slice's last event (operators' resync)
    summary: dict[str, Any]
    aggregator_uuid: str
    transaction_id: str
    batch: Batch
    new_states: dict[str, dict]


def _raw_devices(payload: Any) -> list[str]:
    """Device uuids of a payload not validated yet (a malformed one yields what it can)."""
    if not isinstance(payload, dict):
        return []
    return [
        item["uuid"]
        for key in ("assets", "markets")
        if isinstance(payload.get(key), list)
        for item in payload[key]
        if isinstance(item, dict) and isinstance(item.get("uuid"), str)
    ]


def handle_slices(
    payloads: list[dict[str, Any]], worker: str = "", transaction_id: str | None = None
) -> list[dict[str, Any]]:
    """Decide and submit each slice's batch, in order; a summary per slice.

    ``transaction_id`` replaces the event's (an operator's resync of one slice). Each slice is
    validated just before it is decided and its model dropped right after, so a task holds one
    validated slice at a time beside its decoded payloads. Not waiting for answers: the exchange
    executes batches at its next tick, which (at fast pace) waits for every aggregator's batch,
    so a worker thread blocked here would hold back the very tick that answers it. The
    dispatcher counts the answers as they arrive.
    """
    ctx = context()
    states, controls, current_slot = ctx.store.snapshot(
        list(dict.fromkeys(uuid for payload in payloads for uuid in _raw_devices(payload)))
    )
    decided: list[_Decided] = []
    stale = 0
    shard: int | None = None  # of the task, for its counters
    for payload in payloads:
        try:
            task = SliceTask.model_validate(payload)
        except ValidationError as exc:
            logger.error("skipped a malformed slice: %s", exc)
            continue
        shard = task.shard
        if slot_closed(task, current_slot):
            stale += 1
            continue
        batch, new_states, skipped = decide_slice(task, ctx, (states, controls))
        states.update(new_states)  # a later slice of the same devices (a second tick) builds on this one
        summary = {
            "aggregator": task.aggregator,
            "slot": task.slot,
            "event": task.event,
            "completion": task.completion,
            "slice": task.slice,
            "shard": task.shard,
            "commands": sum(len(commands) for commands in batch.values()),
            "skipped": skipped,
            "sent_after_s": round(time.time() - task.dispatched_at, 4),
        }
        decided.append(
            _Decided(payload, summary, task.aggregator_uuid, transaction_id or task.transaction_id, batch, new_states)
        )
    if stale:
        ctx.store.incr("stale_slices_dropped", stale)
        logger.info("dropped %d slice(s) of a slot that has closed (the exchange is at %s)", stale, current_slot)
    if not decided:
        if shard is not None:  # every slice was stale: the task is still done
            ctx.store.record_task(shard, 0, 0, worker, slices=0)
        return []
    errors = ctx.link.submit_many([(item.aggregator_uuid, item.batch, item.transaction_id) for item in decided])
    saved: dict[str, dict] = {}
    last_events = []
    for item, error in zip(decided, errors, strict=True):
        if error is None:
            saved.update(item.new_states)
            last_events.append((item.aggregator_uuid, item.summary["slice"], item.payload))
        else:
            # Its devices keep their old state, so the next event decides them afresh.
            logger.error(
                "%s[%d]: batch %s not sent: %s",
                item.summary["aggregator"],
                item.summary["slice"],
                item.transaction_id,
                error,
            )
            item.summary.update(commands=0, error=str(error))
    ctx.store.save(saved, last_events)
    summaries = [item.summary for item in decided]
    ctx.store.record_task(
        summaries[0]["shard"],
        sum(summary["commands"] for summary in summaries),
        sum(summary["skipped"] for summary in summaries),
        worker,
        slices=len(summaries),
        failed=sum(error is not None for error in errors),
    )
    return summaries


def handle_event(payload: dict[str, Any], worker: str = "", transaction_id: str | None = None) -> dict[str, Any]:
    """One slice (an operator's resync); ``transaction_id`` replaces the event's."""
    summaries = handle_slices([payload], worker, transaction_id)
    if not summaries:
        raise ValueError("not a valid slice task, or its slot has closed (the next event decides it afresh)")
    return summaries[0]


def _summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """What Flower shows as the result: totals, and the slices only when few."""
    result: dict[str, Any] = {
        "slices": len(summaries),
        "commands": sum(s["commands"] for s in summaries),
        "skipped": sum(s["skipped"] for s in summaries),
        "errors": sum("error" in s for s in summaries),
    }
    if summaries:
        result["sent_after_s"] = max(s["sent_after_s"] for s in summaries)
    if len(summaries) <= 3:
        result["detail"] = summaries
    return result


@worker_ready.connect
def _warm_up(**_: Any) -> None:
    """Load the fleet config and open the Redis connection before the first event, not during it."""
    try:
        context().store.client.ping()
    except Exception:
        logger.exception("could not prepare the fleet context; the first task will try again")


@shared_task(name="workers.on_market_slot", bind=True)
def on_market_slot(self, payload: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    return _summary(handle_slices(slice_payloads(payload), self.request.hostname or ""))


@shared_task(name="workers.on_tick", bind=True)
def on_tick(self, payload: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    return _summary(handle_slices(slice_payloads(payload), self.request.hostname or ""))


@shared_task(name="workers.on_finish")
def on_finish(payload: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    tasks = [SliceTask.model_validate(item) for item in slice_payloads(payload)]
    store = context().store
    store.incr("finished_slices", len(tasks))
    store.incr("tasks_done")
    return {"finished": [f"{task.aggregator}[{task.slice}]" for task in tasks]}
