"""One exchange run: registration, aggregators, batches, the tick procedure and its events.

No I/O: :meth:`Simulation.handle` takes a received message and returns immediate replies;
:meth:`Simulation.step` runs one tick and returns everything to publish, in the order of
REDIS.md 8 (batch responses, then ``market``, ``tick``, ``finish``, ``trade`` events).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.times import format_completion, format_slot, format_trade_time
from gsy_local_exchange.aggregators import AggregatorRegistry
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.batch_answers import MB, BatchAnswers, BatchKey, BatchLimits, error_envelope
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.commands import CommandExecutor
from gsy_local_exchange.direct import DirectMode
from gsy_local_exchange.engine import GridEngine, MarketArea, TradeRecord
from gsy_local_exchange.grid_tree import GridTreeBuilder
from gsy_local_exchange.scenario import Scenario

logger = logging.getLogger(__name__)
limited_log = RateLimitedLog(logger)  # what clients send decides how often these are logged

Outgoing = tuple[str, str]  # (channel, JSON payload)


@dataclass
class StepResult:
    messages: list[Outgoing]
    event_aggregators: set[str] = field(default_factory=set)  # who got a market/tick event
    trades: list[TradeRecord] = field(default_factory=list)
    client_orders: list[tuple[str, str, str]] = field(default_factory=list)  # (asset name, side, batch id)
    slot_started: bool = False
    finished: bool = False


@dataclass
class _Batch:
    transaction_id: str
    aggregator_uuid: str
    commands: dict[str, list]
    sequence: int
    responses: dict[str, list[str]] = field(default_factory=dict)  # area uuid -> JSON of each response
    answer_bytes: int = 0

    @property
    def key(self) -> BatchKey:
        return self.aggregator_uuid, self.transaction_id

    def answer(self, area_uuid: str, response: dict) -> None:
        # Serialized one by one so the answer's size is known while the batch executes.
        text = json.dumps(response)
        self.responses.setdefault(area_uuid, []).append(text)
        self.answer_bytes += len(text) + 2

    def envelope(self) -> str:
        responses = ", ".join(
            f"{json.dumps(area_uuid)}: [{', '.join(entries)}]" for area_uuid, entries in self.responses.items()
        )
        return (
            f'{{"command": "batch_commands", "transaction_id": {json.dumps(self.transaction_id)}, '
            f'"aggregator_uuid": {json.dumps(self.aggregator_uuid)}, "responses": {{{responses}}}}}'
        )


def command_count(commands: dict) -> int:
    """Commands of a batch; an area listed with no command counts as one (it still gets an answer entry)."""
    return sum(max(len(value), 1) if isinstance(value, list) else 1 for value in commands.values())


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        clock: SimulationClock,
        compact_tree: bool = False,
        limits: BatchLimits = BatchLimits(),
        strict_reference: bool = False,
    ) -> None:
        """``compact_tree``: events carry every market but only the aggregator's own assets;
        ``strict_reference``: refuse what crashes the reference exchange (see CommandExecutor)."""
        self.clock = clock
        self.limits = limits
        self.engine = GridEngine(scenario, clock)
        self.executor = CommandExecutor(self.engine, strict_reference)
        self.registry = AggregatorRegistry(self._selectable_problem)
        self.tree = GridTreeBuilder(self.engine, compact_tree)
        self.prefixes: dict[str, MarketArea | Asset] = {}
        for area in self.engine.areas.values():
            if area.externally_controllable:
                prefix = area.slug if isinstance(area, MarketArea) else area.name
                self.prefixes[prefix] = area
        self.direct = DirectMode(self.engine, self.executor, self.prefixes)
        self._area_order = {area_uuid: index for index, area_uuid in enumerate(self.engine.areas)}
        self.registered: set[str] = set()
        self.connected: set[str] = set()  # registered assets, in control from the next slot
        self._to_release: set[str] = set()  # unregistered: leave their aggregator next slot
        self._incoming: list[_Batch] = []
        self._queued_commands = 0  # of self._incoming, bounded by limits.max_queued_commands
        self._answers = BatchAnswers(limits)
        self._republish: list[Outgoing] = []
        self._batch_sequence = 0
        self.batches_received: dict[str, int] = {}  # aggregator uuid -> batches seen
        self._tree_cache: dict[str, str] = {}
        self.slot_index = 0
        self.tick = 0
        self.finished = False

    # ------------------------------------------------------------------ incoming messages
    def register_channels(self) -> list[str]:
        """Every per-area channel the exchange serves: registration and legacy direct commands."""
        return [
            name for prefix in self.prefixes for name in (channels.register(prefix), channels.unregister(prefix))
        ] + self.direct.channels()

    def handle(self, channel: str, payload: Any) -> list[Outgoing]:
        """Process one received message; returns replies to publish now."""
        if channel in (channels.AGGREGATOR_COMMANDS, channels.AGGREGATOR_COMMANDS_LEGACY):
            if not isinstance(payload, dict):
                return []
            response = self.registry.handle(payload)
            return [(channels.AGGREGATOR_RESPONSE, json.dumps(response))] if response else []
        if channel == channels.batch_commands():
            return self._receive_batch(payload)
        prefix, _, command = channel.rpartition("/")
        area = self.prefixes.get(prefix)
        if area is None or not isinstance(payload, dict):
            return []
        if command == "register_participant":
            return self._register(prefix, area, payload)
        if command == "unregister_participant":
            return self._unregister(prefix, area, payload)
        return self.direct.receive(prefix, area, command, payload, area.uuid in self.registered)

    def _register(self, prefix: str, area, payload: dict) -> list[Outgoing]:
        self.registered.add(area.uuid)
        response = {
            "command": "register",
            "status": "ready",
            "registered": True,
            "transaction_id": payload.get("transaction_id"),
            "device_uuid": area.uuid,
        }
        return [(channels.register_response(prefix), json.dumps(response))]

    def _unregister(self, prefix: str, area, payload: dict) -> list[Outgoing]:
        transaction_id = payload.get("transaction_id")
        if area.uuid not in self.registered:
            response = {
                "command": "unregister",
                "status": "error",
                "transaction_id": transaction_id,
                "error_message": "Client should be registered in order to access this area.",
            }
        else:
            self.registered.discard(area.uuid)
            self._to_release.add(area.uuid)
            # "status" for gsy-e-style clients, "response" for the original SDK (REDIS.md 3.3).
            response = {
                "command": "unregister",
                "status": "ready",
                "unregistered": True,
                "transaction_id": transaction_id,
                "response": "success",
            }
        return [(channels.unregister_response(prefix), json.dumps(response))]

    def _selectable_problem(self, device_uuid: str) -> str:
        area = self.engine.areas.get(device_uuid)
        if area is None:
            return f"Device {device_uuid} does not exist"
        if not area.externally_controllable:
            return f"Device {device_uuid} does not accept external connections"
        return ""

    def _receive_batch(self, payload: Any) -> list[Outgoing]:
        if not isinstance(payload, dict):
            limited_log.warning("dropped a batch that is not a JSON object")
            return []
        transaction_id = payload.get("transaction_id")
        aggregator_uuid = payload.get("aggregator_uuid")
        if not isinstance(transaction_id, str) or not isinstance(aggregator_uuid, str):
            limited_log.warning("dropped a batch without transaction_id/aggregator_uuid")
            return []
        known = aggregator_uuid in self.registry.aggregators
        if known:  # only real aggregators: anyone can send any uuid
            self.batches_received[aggregator_uuid] = self.batches_received.get(aggregator_uuid, 0) + 1
        key = (aggregator_uuid, transaction_id)
        if key in self._answers:
            # Idempotency: a re-sent batch is never applied twice; its answer is sent again.
            previous = self._answers.replay(key)
            if previous is not None:
                self._republish.append((channels.batch_response(aggregator_uuid), previous))
            return []
        commands = payload.get("batch_commands")
        count = command_count(commands) if isinstance(commands, dict) else 0
        if (
            known
            and count <= self.limits.max_commands
            and (self._queued_commands + count > self.limits.max_queued_commands)
        ):
            # Not remembered: the same batch sent again after this tick is applied.
            busy = (
                f"Exchange busy: {self._queued_commands} commands already wait for the next tick; "
                "nothing was applied, send the batch again"
            )
            return [(channels.batch_response(aggregator_uuid), error_envelope(aggregator_uuid, transaction_id, busy))]
        self._answers.add(key)
        reason = ""
        if not known:
            reason = f"Aggregator {aggregator_uuid} does not exist"
        elif not isinstance(commands, dict):
            reason = "batch_commands must be an object mapping area uuids to lists of commands"
        elif count > self.limits.max_commands:
            reason = (
                f"Batch of {count} commands refused: at most {self.limits.max_commands} commands per batch "
                "(exchange option --max-batch-commands); nothing was applied, send it in smaller batches"
            )
        if reason:
            envelope = error_envelope(aggregator_uuid, transaction_id, reason)
            self._answers.store(key, envelope)
            return [(channels.batch_response(aggregator_uuid), envelope)]
        assert isinstance(commands, dict)  # anything else has a reason above
        self._batch_sequence += 1
        self._queued_commands += count
        self._incoming.append(_Batch(transaction_id, aggregator_uuid, commands, self._batch_sequence))
        return []

    # ------------------------------------------------------------------ the tick
    @property
    def controlled(self) -> set[str]:
        return set(self.registry.owner) | self.connected

    def step(self) -> StepResult:
        """Run one tick (REDIS.md 8) and return what to publish."""
        if self.finished:
            return StepResult([], finished=True)
        engine = self.engine
        clock = self.clock
        tick = self.tick
        result = StepResult([], slot_started=tick == 0)
        if tick == 0:
            self._start_slot()
        processing, self._incoming, self._queued_commands = self._incoming, [], 0
        engine.run_templates(self.controlled)
        direct_responses = self.direct.execute_queued(result.client_orders)
        trades = engine.match()
        result.trades = trades
        responses = self._execute_batches(processing, result.client_orders)
        engine.end_tick()
        result.messages.extend(self._republish)
        self._republish = []
        result.messages.extend(responses)
        result.messages.extend(direct_responses)
        last_tick = tick == clock.ticks_per_slot - 1
        finishing = last_tick and self.slot_index == clock.slot_count - 1
        self._publish_events(tick, trades, finishing, result)
        result.messages.extend(self._direct_events(tick, trades, finishing))
        if last_tick:
            self.tick = 0
            self.slot_index += 1
        else:
            self.tick += 1
        self.finished = finishing
        result.finished = finishing
        return result

    def _start_slot(self) -> None:
        for device in self._to_release:
            self.registry.release(device)
            self.connected.discard(device)
        self._to_release.clear()
        self.connected |= {uuid for uuid in self.registered if isinstance(self.engine.areas[uuid], Asset)}
        self.engine.begin_slot(self.slot_index)

    def _execute_batches(self, batches: list[_Batch], placed: list[tuple[str, str, str]]) -> list[Outgoing]:
        if not batches:
            return []
        work = []
        for batch in batches:
            for area_uuid, commands in batch.commands.items():
                area = self.engine.areas.get(area_uuid)
                owner = self.registry.owner.get(area_uuid)
                batch.responses.setdefault(area_uuid, [])
                if not isinstance(commands, list):
                    commands = [commands]
                if area is None or owner != batch.aggregator_uuid:
                    reason = (
                        f"Area {area_uuid} does not exist"
                        if area is None
                        else f"Area {area_uuid} is not controlled by aggregator {batch.aggregator_uuid}"
                    )
                    for command in commands:
                        batch.answer(area_uuid, _command_error(command, area_uuid, batch, reason))
                    continue
                for index, command in enumerate(commands):
                    work.append((self._area_order[area_uuid], batch.sequence, index, area, command, batch))
        work.sort(key=lambda item: item[:3])
        answer_limit = self.limits.max_answer_bytes
        for _, _, _, area, command, batch in work:
            if batch.answer_bytes > answer_limit:
                # Its answer must still fit through Redis to its client: the rest of the batch is refused.
                batch.answer(
                    area.uuid,
                    _command_error(
                        command,
                        area.uuid,
                        batch,
                        (
                            f"Not executed: the answer to this batch passed {answer_limit / MB:g} MB; "
                            "send fewer commands per batch"
                        ),
                    ),
                )
                continue
            try:
                response = self.executor.execute(area, command, batch.transaction_id)
                batch.answer(area.uuid, response)
                if response.get("status") == "ready" and response.get("command") in ("offer", "bid"):
                    placed.append((area.name, response["command"], batch.transaction_id))
            except Exception:  # noqa: BLE001 - a bug in one command must not stop the exchange
                limited_log.error("command %r on %s failed", command, area.uuid, exc_info=True)
                batch.answer(
                    area.uuid, _command_error(command, area.uuid, batch, "Internal error while executing the command")
                )
        outgoing = []
        for batch in batches:
            envelope = batch.envelope()
            self._answers.store(batch.key, envelope)
            outgoing.append((channels.batch_response(batch.aggregator_uuid), envelope))
        return outgoing

    # ------------------------------------------------------------------ events
    def _publish_events(self, tick: int, trades: list[TradeRecord], finishing: bool, result: StepResult) -> None:
        clock = self.clock
        engine = self.engine
        event_tick = clock.is_event_tick(tick)
        trade_lists = self._trades_by_aggregator(trades)
        num_ticks = clock.num_ticks_field
        completion = format_completion(clock.completion_percent(tick))
        if event_tick:
            self.tree.refresh()
        common_tail = (
            f'"feed_in_tariff_rate": {json.dumps(engine.feed_in_tariff_rate)}, '
            f'"market_maker_rate": {json.dumps(engine.market_maker_rate)}, '
        )
        slot = format_slot(engine.slot_start)
        for aggregator in list(self.registry.aggregators.values()):
            devices = aggregator.devices
            if not devices:
                continue
            channel = channels.aggregator_events(aggregator.uuid)
            # Only market and tick events depend on owning assets; skip the scan on other ticks.
            has_assets = (tick == 0 or event_tick) and any(isinstance(engine.areas.get(d), Asset) for d in devices)
            sends_market = tick == 0 and (has_assets or self.slot_index > 0)
            sends_tick = event_tick and has_assets
            if sends_market or sends_tick:
                self._tree_cache[aggregator.uuid] = self.tree.tree_json(devices)
                result.event_aggregators.add(aggregator.uuid)
            tree = self._tree_cache.get(aggregator.uuid)
            for event, wanted in (("market", sends_market), ("tick", sends_tick)):
                if wanted:
                    result.messages.append(
                        (
                            channel,
                            (
                                f'{{"slot_completion": "{completion}", "market_slot": "{slot}", '
                                f'"grid_tree": {tree}, {common_tail}"event": "{event}", "simulation_id": null, '
                                f'"num_ticks": {num_ticks}}}'
                            ),
                        )
                    )
            if finishing:
                result.messages.append(
                    (channel, json.dumps({"event": "finish", "simulation_id": None, "num_ticks": num_ticks}))
                )
            trade_list = trade_lists.get(aggregator.uuid)
            if trade_list:
                if tree is None:
                    tree = self._tree_cache[aggregator.uuid] = self.tree.tree_json(devices)
                result.messages.append(
                    (
                        channel,
                        (
                            f'{{"trade_list": {json.dumps(trade_list)}, "grid_tree": {tree}, {common_tail}'
                            f'"event": "trade", "simulation_id": null, "num_ticks": {num_ticks}}}'
                        ),
                    )
                )

    def _direct_events(self, tick: int, trades: list[TradeRecord], finishing: bool) -> list[Outgoing]:
        """Events of clients connected directly (registered, no aggregator selected)."""
        if not self.registered:
            return []
        owned = self.registry.owner
        direct_assets = [
            area for uuid in self.connected if uuid not in owned and isinstance(area := self.engine.areas[uuid], Asset)
        ]
        direct_markets = [
            area
            for uuid in self.registered
            if uuid not in owned and isinstance(area := self.engine.areas[uuid], MarketArea)
        ]
        return self.direct.events(
            tick, tick == 0, self.clock.is_event_tick(tick), trades, finishing, direct_assets, direct_markets
        )

    def _trades_by_aggregator(self, trades: list[TradeRecord]) -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        owner = self.registry.owner
        for trade in trades:
            for asset, is_seller in ((trade.seller, True), (trade.buyer, False)):
                aggregator_uuid = owner.get(asset.uuid)
                if aggregator_uuid is not None:
                    grouped.setdefault(aggregator_uuid, []).append(self._trade_event(trade, asset, is_seller))
        return grouped

    def _trade_event(self, trade: TradeRecord, asset: Asset, is_seller: bool) -> dict:
        settlement = trade.settlement
        energy = trade.energy
        if is_seller:
            own_fee = trade.seller_fee
            price = (settlement.seller_revenue_rate + own_fee) * energy
        else:
            own_fee = trade.buyer_fee
            price = settlement.buyer_rate * energy
        market = asset.market
        return {
            "event": "trade",
            "asset_id": asset.uuid,
            "trade_id": trade.trade_id,
            "time": format_trade_time(trade.time),
            "trade_price": round(price, 8),
            "traded_energy": energy,
            "total_fee": round(own_fee * energy, 8),
            "local_market_fee": float(market.fee_last) if self.slot_index > 0 else "None",
            "seller": asset.name if is_seller else "anonymous",
            "buyer": "anonymous" if is_seller else asset.name,
            "seller_origin": trade.seller.name,
            "buyer_origin": trade.buyer.name,
            "bid_id": trade.bid_id,
            "offer_id": trade.offer_id,
            "residual_bid_id": trade.residual_bid_id or "None",
            "residual_offer_id": trade.residual_offer_id or "None",
        }


def _command_error(command: Any, area_uuid: str, batch: _Batch, message: str) -> dict:
    return {
        "command": command.get("type") if isinstance(command, dict) else None,
        "status": "error",
        "area_uuid": area_uuid,
        "message": message,
        "transaction_id": batch.transaction_id,
    }
