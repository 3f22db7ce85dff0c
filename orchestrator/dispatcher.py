"""The dispatcher: exchange events in, slice tasks out, one Celery message per shard per burst.

The SDK's reader thread only queues events; this loop turns each into slice tasks carrying just
the assets of that slice (their ``asset_info`` and path fee) and the market data they need, and
collects them per shard queue (``orchestrator.batching``): at 10,000 assets an event becomes a
dozen messages instead of 100 tasks. Slice payloads are built as plain dicts in the shape of
``SliceTask``, which the worker validates: building and dumping a model per asset here cost more
than everything else the dispatcher does with an event but the JSON decoding.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery

from gsy_e_sdk.wire.events import EventError, FinishEvent, TradeEvent, parse_event
from gsy_e_sdk.wire.grid_tree import TreeIndex, asset_kind, index_tree
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.redis_connection import RedisConnection
from orchestrator.answers import AnswerCounter
from orchestrator.attach import AttachedAggregator
from orchestrator.batching import Message, ShardBuffer
from orchestrator.celery_app import purge_shard_queues
from orchestrator.config import FleetConfig
from orchestrator.exchange_link import ExchangeLink, make_link
from orchestrator.finish import FinishWatch
from orchestrator.fleet_key import fleet_key
from orchestrator.messages import slice_transaction_id
from orchestrator.sequence import SequenceTracker
from orchestrator.sharding import Slice, plan_slices, queue_name
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)
_dropped = RateLimitedLog(logger)  # anyone who can publish on an aggregator's channel decides how often

TASK_FOR_EVENT = {"market": "workers.on_market_slot", "tick": "workers.on_tick", "finish": "workers.on_finish"}
BURST_GAP_S = 0.003  # a burst of events has passed when none arrived for this long
BURST_MAX_AGE_S = 0.05  # ... or when its first slice has waited this long
MAX_ASSETS_PER_MESSAGE = 1_000  # a shard's message goes out once it holds this many assets


def task_argsrepr(slices: list[dict[str, Any]]) -> str:
    """What Flower shows as a task's args: which slices, shard, slot and tick, not the payload.

    Most telling first, since Flower's tasks table cuts args at about 45 characters, e.g.
    ``households[1] shard-1 market slot=2026-06-01T10:00 tick=0% assets=6``, or
    ``households[1]+9 shard-1 ...`` for a message carrying 10 slices (slot and tick of the first).
    """
    first = slices[0]
    more = f"+{len(slices) - 1}" if len(slices) > 1 else ""
    counts = [
        f"{label}={total}"
        for label, total in (
            ("assets", sum(len(item.get("assets") or ()) for item in slices)),
            ("markets", sum(len(item.get("markets") or ()) for item in slices)),
        )
        if total
    ]
    return " ".join(
        [
            f"{first['aggregator']}[{first['slice']}]{more}",
            queue_name(first["shard"]),
            first["event"],
            f"slot={first['slot']}",
            f"tick={first['completion']}%",
            *counts,
        ]
    )


def slice_payload(
    fleet: str,
    aggregator: AttachedAggregator,
    piece: Slice,
    rates: Mapping[str, float | None],
    kind: str,
    slot: str | None,
    completion: int,
    tree: TreeIndex,
    received: float,
    key: bytes,
) -> dict[str, Any] | None:
    """One slice's task payload (the fields of ``SliceTask``) for one event; None when the event
    holds nothing for it. ``rates``: the event's ``market_maker_rate`` and ``feed_in_tariff_rate``
    (none for ``finish``); ``key`` is the fleet's, for the batch's transaction id. Pure."""
    payload: dict[str, Any] = {
        "fleet": fleet,
        "aggregator": aggregator.name,
        "aggregator_uuid": aggregator.uuid,
        "slice": piece.index,
        "shard": piece.shard,
        "event": kind,
        "slot": slot,
        "completion": completion,
        "market_maker_rate": rates.get("market_maker_rate"),
        "feed_in_tariff_rate": rates.get("feed_in_tariff_rate"),
        "dispatched_at": received,
        "transaction_id": slice_transaction_id(key, aggregator.uuid, slot, kind, completion, piece.index),
        "assets": [],
        "markets": [],
    }
    if kind == "finish":
        return payload
    for device in piece.assets:
        node = tree.nodes.get(device)
        info = node.get("asset_info") if node else None
        asset = asset_kind(info) if info else None
        if asset is not None:
            payload["assets"].append(
                {
                    "uuid": device,
                    "name": aggregator.assets[device],
                    "kind": asset,
                    "info": info,
                    "fee_to_root": tree.fee_to_root(device),
                }
            )
    if kind == "market":
        for device in piece.markets:
            node = tree.nodes.get(device)
            if node is not None:
                payload["markets"].append(
                    {
                        "uuid": device,
                        "name": node.get("area_name", aggregator.markets[device]),
                        "last_market_stats": node.get("last_market_stats") or {},
                        "current_market_fee": node.get("current_market_fee"),
                        "last_market_fee": node.get("last_market_fee"),
                    }
                )
    return payload if payload["assets"] or payload["markets"] else None


class ReaderDied(RuntimeError):
    """The dispatcher's event reader is gone; no event would ever arrive again."""


class Dispatcher:
    def __init__(
        self,
        config: FleetConfig,
        connection: RedisConnection,
        app: Celery,
        on_slot: Callable[[str], None] | None = None,
        link: ExchangeLink | None = None,
    ) -> None:
        """``connection`` is the Redis holding the fleet's state (the exchange's, in Redis mode)."""
        self.config = config
        self.connection = connection
        self.app = app
        self.link = link or make_link(config, connection)
        self.store = StateStore(connection.redis, config.name)
        self.key = b""  # the fleet's, read by start()
        self.aggregators: list[AttachedAggregator] = []
        self.slices: dict[str, list[Slice]] = {}
        self.finish = FinishWatch()
        self.slots_seen: list[str] = []
        self.tasks_sent = 0
        self._on_slot = on_slot
        self._events: queue.Queue[tuple[AttachedAggregator, dict, float]] = queue.Queue()
        self.sequence = SequenceTracker(self.store)
        self.answers = AnswerCounter(self.store)
        self._kinds: dict[str, str] = {}

    def start(self, fresh: bool = False) -> None:
        """Attach the fleet and start listening; raises FleetConfigError before anything runs.

        ``fresh`` starts a new run: the fleet's metrics are cleared and tasks an interrupted run
        left in the shard queues are dropped (a restarted dispatcher keeps both).
        """
        self.key = fleet_key(self.store.client, self.config.name)
        if fresh:
            self.store.reset()
            purge_shard_queues(self.app, [queue_name(shard) for shard in range(self.config.shards)])
        self.aggregators = self.link.attach(before_select=self._listen)
        self.store.meta("aggregators", {a.name: a.uuid for a in self.aggregators})
        self.store.meta(
            "slices",
            {a.name: [[s.index, s.shard, len(s.assets)] for s in self.slices[a.uuid]] for a in self.aggregators},
        )
        self.store.meta("placements", self._placements())

    def _listen(self, aggregators: list[AttachedAggregator]) -> None:
        """Plan the slices and subscribe to every aggregator's events, before its devices are
        selected: an exchange waiting for selections sends its first market event at the last."""
        self.aggregators = aggregators
        # Resume each aggregator's event sequence where the last dispatcher of this fleet left it,
        # so a restart tells a tick of the current slot from one of a slot it never started.
        self.sequence.load()
        for aggregator in aggregators:
            self.slices[aggregator.uuid] = plan_slices(
                aggregator.name,
                list(aggregator.assets),
                list(aggregator.markets),
                self.config.shards,
                self.config.max_assets_per_task,
            )
        for aggregator in aggregators:
            self.link.listen(aggregator, self._queue_handler(aggregator), self.answers.count)

    def _placements(self) -> dict[str, dict[str, Any]]:
        """Device name -> where it lives, so operators can route commands to the owning shard."""
        placements = {}
        for aggregator in self.aggregators:
            for piece in self.slices[aggregator.uuid]:
                for devices, is_market in ((piece.assets, False), (piece.markets, True)):
                    names = aggregator.markets if is_market else aggregator.assets
                    for device in devices:
                        placements[names[device]] = {
                            "uuid": device,
                            "aggregator": aggregator.name,
                            "aggregator_uuid": aggregator.uuid,
                            "slice": piece.index,
                            "shard": piece.shard,
                            "market": is_market,
                        }
        return placements

    def _queue_handler(self, aggregator: AttachedAggregator):
        def handler(payload: dict[str, Any]) -> None:
            self._events.put((aggregator, payload, time.time()))

        return handler

    @property
    def done(self) -> bool:
        return self.finish.done(len(self.aggregators))

    def run(self, stop: threading.Event | None = None) -> None:
        """Dispatch until every aggregator received ``finish`` (or ``stop`` is set)."""
        buffer = ShardBuffer(MAX_ASSETS_PER_MESSAGE, BURST_MAX_AGE_S)
        while not (stop and stop.is_set()):
            if not buffer and self.done:
                break
            try:
                aggregator, payload, received = self._events.get(timeout=BURST_GAP_S if buffer else 0.5)
            except queue.Empty:
                self._send(buffer.drain())  # the burst has passed
                self.sequence.flush()
                self.answers.flush()
                if not self.link.listening():
                    # Waiting on would look healthy while nothing arrives: fail loudly, so the
                    # operator or a supervisor restarts the dispatcher (it resumes where it was).
                    raise ReaderDied("the thread reading exchange events has died; restart the dispatcher") from None
                continue
            try:
                planned = self.dispatch(aggregator, payload, received)
            except Exception:
                logger.exception("could not dispatch an event of %s", aggregator.name)
                continue
            now = time.monotonic()
            self._send([message for task_name, item in planned for message in buffer.add(task_name, item, now)])
            if not buffer:
                self.sequence.flush()  # only once every slice of the events is sent
        self._send(buffer.drain())
        self.sequence.flush()
        self.answers.flush()

    def dispatch(
        self, aggregator: AttachedAggregator, payload: dict[str, Any], received: float
    ) -> list[tuple[str, dict[str, Any]]]:
        """(task name, slice payload) for each slice one event concerns (none for trades, which are counted)."""
        try:
            event = parse_event(payload)
        except EventError as exc:
            _dropped.warning("%s: dropped an event: %s", aggregator.name, exc)
            return []
        if isinstance(event, TradeEvent):
            # Strategies decide on market and tick events only; trades just count, here.
            trades = event.trade_list
            self.store.record_trades(len(trades), sum(trade.traded_energy for trade in trades))
            return []
        if isinstance(event, FinishEvent):
            self.finish.on_finish(aggregator.uuid)
            return self._plan(aggregator, "finish", None, 0, {}, index_tree(None), received)
        slot, completion = event.market_slot, event.completion
        if event.event == "tick" and completion < 10:
            return []  # the slot's market event already covers 0 %
        if self.finish.on_event(aggregator.uuid):
            self.store.incr("forged_finish_events")
            logger.warning(
                "%s: events after a finish event; that finish was not the exchange's, ignored", aggregator.name
            )
        check = self.sequence.check(aggregator.name, aggregator.uuid, event.event, slot, completion)
        if check.duplicate:
            return []
        # On resync this slot's market event was lost: this tick starts the slot.
        kind = "market" if check.resync else event.event
        if kind == "market":
            self._note_slot(slot)
        rates = {"market_maker_rate": event.market_maker_rate, "feed_in_tariff_rate": event.feed_in_tariff_rate}
        planned = self._plan(aggregator, kind, slot, completion, rates, index_tree(event.grid_tree), received)
        self.sequence.save(aggregator.uuid, slot, completion)  # flushed once sent: a restart re-sends, never skips
        return planned

    def _plan(
        self,
        aggregator: AttachedAggregator,
        kind: str,
        slot: str | None,
        completion: int,
        rates: Mapping[str, float | None],
        tree: TreeIndex,
        received: float,
    ) -> list[tuple[str, dict[str, Any]]]:
        planned = []
        for piece in self.slices[aggregator.uuid]:
            item = slice_payload(
                self.config.name, aggregator, piece, rates, kind, slot, completion, tree, received, self.key
            )
            if item is not None:
                self._note_kinds(item["assets"])
                planned.append((TASK_FOR_EVENT[kind], item))
        return planned

    def _send(self, messages: list[Message]) -> None:
        """Send shard messages, one Celery task each."""
        if not messages:
            return
        self.answers.expect(item for message in messages for item in message.slices)
        for task_name, shard, slices in messages:
            try:
                self.app.send_task(task_name, args=[slices], queue=queue_name(shard), argsrepr=task_argsrepr(slices))
            except Exception:
                logger.exception("could not send %d slice(s) to %s", len(slices), queue_name(shard))
                continue
            self.tasks_sent += 1

    def _note_kinds(self, assets: list[dict[str, Any]]) -> None:
        """Publish asset kinds as they become known (operators validate parameters by kind)."""
        new = {asset["uuid"]: asset["kind"] for asset in assets if self._kinds.get(asset["uuid"]) != asset["kind"]}
        if new:
            self._kinds.update(new)
            self.store.meta("kinds", new)

    def _note_slot(self, slot: str | None) -> None:
        if slot and (not self.slots_seen or self.slots_seen[-1] != slot):
            self.slots_seen.append(slot)
            self.store.set_current_slot(slot)  # workers drop tasks of the slots before it
            if self._on_slot:
                self._on_slot(slot)
