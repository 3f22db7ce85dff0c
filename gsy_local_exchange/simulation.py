"""One exchange run: routes what clients send, and runs the tick procedure (REDIS.md 8).

No I/O: :meth:`Simulation.handle` takes a received message and returns immediate replies;
:meth:`Simulation.step` runs one tick and returns everything to publish, in the order of
REDIS.md 8 (batch responses, then ``market``, ``tick``, ``finish``, ``trade`` events). The parts
live in their own modules: the engine (``engine``), registration (``participants``), aggregators
(``aggregators``), batches (``batches``), direct mode (``direct``), built-in strategies
(``templates``) and aggregator events (``aggregator_events``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gsy_e_sdk.wire import channels
from gsy_local_exchange import templates
from gsy_local_exchange.aggregator_events import AggregatorEvents
from gsy_local_exchange.aggregators import AggregatorRegistry
from gsy_local_exchange.batch_answers import BatchAnswers, BatchLimits
from gsy_local_exchange.batches import BatchDesk
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.commands import CommandExecutor
from gsy_local_exchange.direct import DirectMode
from gsy_local_exchange.engine import GridEngine
from gsy_local_exchange.grid_tree import GridTreeBuilder
from gsy_local_exchange.outgoing import Outgoing
from gsy_local_exchange.participants import Participants
from gsy_local_exchange.scenario import Scenario
from gsy_local_exchange.trading import TradeRecord


@dataclass
class StepResult:
    messages: list[Outgoing]
    event_aggregators: set[str] = field(default_factory=set)  # who got a market/tick event
    trades: list[TradeRecord] = field(default_factory=list)
    client_orders: list[tuple[str, str, str]] = field(default_factory=list)  # (asset name, side, batch id)
    slot_started: bool = False
    finished: bool = False


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
        self.engine = GridEngine(scenario, clock)
        self.executor = CommandExecutor(self.engine, strict_reference)
        self.participants = Participants(self.engine.areas)
        self.prefixes = self.participants.prefixes
        self.registry = AggregatorRegistry(self.participants.selection_problem)
        self.direct = DirectMode(self.engine, self.executor, self.prefixes)
        self._answers = BatchAnswers(limits)
        self.batches = BatchDesk(limits, self._answers, self.executor, self.engine.areas, self.registry)
        self.events = AggregatorEvents(self.engine, self.registry, GridTreeBuilder(self.engine, compact_tree))
        self.slot_index = 0
        self.tick = 0
        self.finished = False

    @property
    def batches_received(self) -> dict[str, int]:
        """Aggregator uuid -> batches received, for the runner's wait for answers."""
        return self.batches.received

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
            return self.batches.receive(payload)
        prefix, _, command = channel.rpartition("/")
        area = self.prefixes.get(prefix)
        if area is None or not isinstance(payload, dict):
            return []
        if command == "register_participant":
            return self.participants.register(prefix, area, payload)
        if command == "unregister_participant":
            return self.participants.unregister(prefix, area, payload)
        return self.direct.receive(prefix, area, command, payload, area.uuid in self.participants.registered)

    # ------------------------------------------------------------------ the tick
    @property
    def controlled(self) -> set[str]:
        return set(self.registry.owner) | self.participants.connected

    def step(self) -> StepResult:
        """Run one tick (REDIS.md 8) and return what to publish."""
        if self.finished:
            return StepResult([], finished=True)
        engine = self.engine
        clock = self.clock
        tick = self.tick
        result = StepResult([], slot_started=tick == 0)
        if tick == 0:
            self.participants.start_slot(self.registry)
            engine.begin_slot(self.slot_index)
        processing = self.batches.take()
        templates.run_templates(engine, self.controlled)
        direct_responses = self.direct.execute_queued(result.client_orders)
        trades = engine.match()
        result.trades = trades
        responses = self.batches.execute(processing, result.client_orders)
        engine.end_tick()
        result.messages.extend(self.batches.take_republished())
        result.messages.extend(responses)
        result.messages.extend(direct_responses)
        last_tick = tick == clock.ticks_per_slot - 1
        finishing = last_tick and self.slot_index == clock.slot_count - 1
        result.event_aggregators = self.events.publish(tick, trades, finishing, result.messages)
        if self.participants.registered:
            direct_assets, direct_markets = self.participants.direct(self.registry.owner)
            result.messages.extend(
                self.direct.events(
                    tick, tick == 0, clock.is_event_tick(tick), trades, finishing, direct_assets, direct_markets
                )
            )
        if last_tick:
            self.tick = 0
            self.slot_index += 1
        else:
            self.tick += 1
        self.finished = finishing
        result.finished = finishing
        return result
