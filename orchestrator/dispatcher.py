"""The dispatcher: exchange events in, slice tasks out, one Celery message per shard per burst.

The SDK's reader thread only queues events; this loop turns each into slice tasks carrying just
the assets of that slice (their ``asset_info`` and path fee) and the market data they need, and
collects them per shard queue (``orchestrator.batching``): at 10,000 assets an event becomes a
dozen messages instead of 100 tasks. Slice payloads are built as plain dicts in the shape of
``SliceTask``, which the worker validates: building and dumping a model per asset here cost more
than everything else the dispatcher does with an event but the JSON decoding.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from celery import Celery
from redis.typing import EncodableT, FieldT

from gsy_e_sdk.redis_connection import RedisConnection
from orchestrator.attach import AttachedAggregator
from orchestrator.batching import Message, ShardBuffer
from orchestrator.config import FleetConfig
from orchestrator.exchange_link import ExchangeLink, make_link
from orchestrator.finish import FinishWatch
from orchestrator.fleet_key import fleet_key
from orchestrator.grid_view import TreeIndex, asset_kind, index_tree
from orchestrator.messages import slice_transaction_id
from orchestrator.sharding import Slice, plan_slices, queue_name
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

IN_FLIGHT_KEPT = 100_000  # batches awaiting an answer; older ones are forgotten
TASK_FOR_EVENT = {"market": "workers.on_market_slot", "tick": "workers.on_tick", "finish": "workers.on_finish"}
BURST_GAP_S = 0.003  # a burst of events has passed when none arrived for this long
BURST_MAX_AGE_S = 0.05  # ... or when its first slice has waited this long
MAX_ASSETS_PER_MESSAGE = 1_000  # a shard's message goes out once it holds this many assets
ANSWERS_FLUSH_S = 0.2  # batch answers are recorded at most this often from the reader thread
Position = tuple[str | None, int]  # (slot, completion %) of an aggregator's last market/tick event


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
    event: dict[str, Any],
    kind: str,
    slot: str | None,
    completion: int,
    tree: TreeIndex,
    received: float,
    key: bytes,
) -> dict[str, Any] | None:
    """One slice's task payload (the fields of ``SliceTask``) for one event; None when the event
    holds nothing for it. ``key`` is the fleet's, for the batch's transaction id. Pure."""
    payload: dict[str, Any] = {
        "fleet": fleet,
        "aggregator": aggregator.name,
        "aggregator_uuid": aggregator.uuid,
        "slice": piece.index,
        "shard": piece.shard,
        "event": kind,
        "slot": slot,
        "completion": completion,
        "market_maker_rate": event.get("market_maker_rate"),
        "feed_in_tariff_rate": event.get("feed_in_tariff_rate"),
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


class SequenceCheck(NamedTuple):
    missed: int  # events of this aggregator the dispatcher never received before this one
    resync: bool  # dispatch this tick as its slot's market event: that event never arrived
    duplicate: bool = False  # the very event dispatched last, delivered again: drop it


def check_sequence(previous: Position | None, event: str, slot: str | None, completion: int) -> SequenceCheck:
    """Where an aggregator's market/tick event stands against the last one dispatched. Pure.

    ``previous`` is (slot, completion %) of the last market or tick event dispatched for the
    aggregator, None when there was none. Pub/sub drops what is published while a subscriber
    is away (a restart, a reconnection), so the sequence is the only evidence of a lost event:

    - the same (slot, completion) as the last one: the same event delivered twice (e.g. by a
      relay that subscribed twice); dispatching it again would run every task twice;
    - a market event starts its slot: nothing is missing (a lost tail of the previous slot
      cannot be told from the slot length alone, which the dispatcher does not know);
    - a tick of the slot last seen, more than 10 % after the last one: the ticks in between
      were lost (counted, nothing to replay: the next tick carries the current state);
    - a tick of another slot: that slot's market event was lost, so strategies never started
      the slot (grid operators act on market events only). It is dispatched as the market
      event (resync); the market event and the ticks before this one are counted as missed.
      With no previous event (a dispatcher joining mid-slot with no recorded position) it is
      resynced the same way but nothing is counted: nothing was lost, the fleet just arrived.
    """
    if previous == (slot, completion):
        return SequenceCheck(0, False, duplicate=True)
    if event == "market":
        return SequenceCheck(0, False)
    if previous is None:
        return SequenceCheck(0, True)
    last_slot, last_completion = previous
    if last_slot != slot:
        return SequenceCheck(1 + max(completion - 10, 0) // 10, True)
    if completion > last_completion + 10:
        return SequenceCheck((completion - last_completion) // 10 - 1, False)
    return SequenceCheck(0, False)


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
        self._last_tick: dict[str, Position] = {}
        self._unsaved_positions: dict[str, str] = {}  # aggregator uuid -> [slot, completion] to persist
        self._kinds: dict[str, str] = {}
        self._in_flight: OrderedDict[str, tuple[int, float]] = OrderedDict()  # batch id -> (shard, received)
        self._in_flight_lock = threading.Lock()  # also guards the answers not recorded yet
        self._answers: list[tuple[int, float, int, int]] = []
        self._answers_flushed = time.monotonic()

    def start(self, fresh: bool = False) -> None:
        """Attach the fleet and start listening; raises FleetConfigError before anything runs.

        ``fresh`` starts a new run: the fleet's metrics are cleared and tasks an interrupted run
        left in the shard queues are dropped (a restarted dispatcher keeps both).
        """
        self.key = fleet_key(self.store.client, self.config.name)
        self.aggregators = self.link.attach()
        if fresh:
            self.store.reset()
            self.app.control.purge()
        # Resume each aggregator's event sequence where the last dispatcher of this fleet left it,
        # so a restart tells a tick of the current slot from one of a slot it never started.
        self._last_tick = self._load_positions()
        for aggregator in self.aggregators:
            self.slices[aggregator.uuid] = plan_slices(
                aggregator.name,
                list(aggregator.assets),
                list(aggregator.markets),
                self.config.shards,
                self.config.max_assets_per_task,
            )
        for aggregator in self.aggregators:
            self.link.listen(aggregator, self._queue_handler(aggregator), self._count_answers)
        self.store.meta("aggregators", {a.name: a.uuid for a in self.aggregators})
        self.store.meta(
            "slices",
            {a.name: [[s.index, s.shard, len(s.assets)] for s in self.slices[a.uuid]] for a in self.aggregators},
        )
        self.store.meta("placements", self._placements())

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

    def _count_answers(self, envelope: dict[str, Any]) -> None:
        """The exchange answered a slice's batch: workers do not wait for answers, we count them.

        Only batches of this dispatcher's own slice tasks count, once each: a re-sent batch's
        repeated answer and operators' batches find no entry here.
        """
        transaction_id = envelope.get("transaction_id")
        if not isinstance(transaction_id, str):
            return
        with self._in_flight_lock:
            sent = self._in_flight.pop(transaction_id, None)
        if sent is None:
            return
        shard, received = sent
        accepted = rejected = 0
        for entries in (envelope.get("responses") or {}).values():
            for entry in entries:
                if not isinstance(entry, dict):
                    continue
                if entry.get("status") == "ready":
                    accepted += 1
                else:
                    rejected += 1
                    logger.info("command rejected: %s", entry)
        with self._in_flight_lock:
            self._answers.append((shard, time.time() - received, accepted, rejected))
            due = time.monotonic() - self._answers_flushed >= ANSWERS_FLUSH_S
        if due:
            self.flush_answers()

    def flush_answers(self) -> None:
        """Record the answers counted since the last flush (a burst's in one round trip)."""
        with self._in_flight_lock:
            answers, self._answers = self._answers, []
            self._answers_flushed = time.monotonic()
        if not answers:
            return
        try:
            self.store.record_answers(answers)
        except Exception:  # noqa: BLE001 - Redis away: keep them for the next flush
            logger.warning("could not record %d batch answers; retrying at the next flush", len(answers))
            with self._in_flight_lock:
                self._answers = answers + self._answers

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
                self._flush_positions()
                self.flush_answers()
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
                self._flush_positions()  # only once every slice of the events is sent
        self._send(buffer.drain())
        self._flush_positions()
        self.flush_answers()

    def dispatch(
        self, aggregator: AttachedAggregator, payload: dict[str, Any], received: float
    ) -> list[tuple[str, dict[str, Any]]]:
        """(task name, slice payload) for each slice one event concerns (none for trades, which are counted)."""
        event = payload.get("event")
        if event == "trade":
            # Strategies decide on market and tick events only; trades just count, here.
            trades = payload.get("trade_list") or []
            self.store.record_trades(len(trades), sum(float(trade.get("traded_energy") or 0) for trade in trades))
            return []
        if event not in TASK_FOR_EVENT:
            return []
        completion = int(str(payload.get("slot_completion", "0%")).rstrip("%") or 0)
        slot: str | None = payload.get("market_slot")
        if event == "tick" and completion < 10:
            return []  # the slot's market event already covers 0 %
        if event in ("market", "tick"):
            if self.finish.on_event(aggregator.uuid):
                self.store.incr("forged_finish_events")
                logger.warning(
                    "%s: events after a finish event; that finish was not the exchange's, ignored", aggregator.name
                )
            check = self._check_sequence(aggregator, slot, completion, event)
            if check.duplicate:
                return []
            if check.resync:
                event = "market"  # resync: this slot's market event was lost; this tick starts the slot
        if event == "market":
            self._note_slot(slot)
        if event == "finish":
            self.finish.on_finish(aggregator.uuid)
        tree = index_tree(payload.get("grid_tree") or {})
        planned = []
        for piece in self.slices[aggregator.uuid]:
            item = slice_payload(
                self.config.name, aggregator, piece, payload, event, slot, completion, tree, received, self.key
            )
            if item is not None:
                self._note_kinds(item["assets"])
                planned.append((TASK_FOR_EVENT[event], item))
        if event in ("market", "tick"):
            self._save_position(aggregator, slot, completion)  # saved once sent: a restart re-sends, never skips
        return planned

    def _send(self, messages: list[Message]) -> None:
        """Send shard messages, one Celery task each."""
        if not messages:
            return
        with self._in_flight_lock:
            for message in messages:
                for item in message.slices:
                    if item["event"] in ("market", "tick"):
                        self._in_flight[item["transaction_id"]] = (item["shard"], item["dispatched_at"])
            while len(self._in_flight) > IN_FLIGHT_KEPT:
                self._in_flight.popitem(last=False)
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
            self.store.meta("kinds", self._kinds)

    def _note_slot(self, slot: str | None) -> None:
        if slot and (not self.slots_seen or self.slots_seen[-1] != slot):
            self.slots_seen.append(slot)
            self.store.set_current_slot(slot)  # workers drop tasks of the slots before it
            if self._on_slot:
                self._on_slot(slot)

    def _check_sequence(
        self, aggregator: AttachedAggregator, slot: str | None, completion: int, event: str
    ) -> SequenceCheck:
        """Count events the dispatcher never saw, and say whether to resync or drop this one."""
        previous = self._last_tick.get(aggregator.uuid)
        check = check_sequence(previous, event, slot, completion)
        if check.duplicate:
            self.store.incr("duplicate_events")
            logger.info("%s: %s %s %d%% received twice; dispatched once", aggregator.name, event, slot, completion)
            return check
        self._last_tick[aggregator.uuid] = (slot, completion)
        missed, resync, _ = check
        if missed:
            self.store.incr("missed_events", missed)
        if resync:
            self.store.incr("resynced_slots")
            logger.warning(
                "%s: %s %d%% arrived without the slot's market event (%d event(s) missed); "
                "dispatched as the market event",
                aggregator.name,
                slot,
                completion,
                missed,
            )
        elif missed:
            logger.warning("%s: missed %d tick event(s) before %s %d%%", aggregator.name, missed, slot, completion)
        return check

    # The last market/tick event dispatched per aggregator, in Redis so it outlives the process
    # (``fresh`` clears it with the rest of the fleet's keys).
    def _positions_key(self) -> str:
        return f"{self.store.prefix}:sequence"

    def _load_positions(self) -> dict[str, Position]:
        positions: dict[str, Position] = {}
        for uuid, raw in self.store.client.hgetall(self._positions_key()).items():
            try:
                slot, completion = json.loads(raw)
                positions[uuid.decode() if isinstance(uuid, bytes) else uuid] = (str(slot), int(completion))
            except (ValueError, TypeError):
                continue  # an unreadable position only costs one resync
        return positions

    def _save_position(self, aggregator: AttachedAggregator, slot: str | None, completion: int) -> None:
        self._unsaved_positions[aggregator.uuid] = json.dumps([slot, completion])

    def _flush_positions(self) -> None:
        """Write the positions of the events dispatched since the last flush, in one command."""
        if not self._unsaved_positions:
            return
        positions, self._unsaved_positions = self._unsaved_positions, {}
        try:
            # cast: redis' Mapping is invariant in its key type, so dict[str, str] is refused.
            self.store.client.hset(self._positions_key(), mapping=cast(dict[FieldT, EncodableT], positions))
        except Exception:  # noqa: BLE001 - Redis away: keep them for the next flush
            self._unsaved_positions = {**positions, **self._unsaved_positions}
            logger.warning("could not record the fleet's event positions; retrying after the next event")
