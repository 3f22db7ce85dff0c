"""The exchange's main loop: pacing, pause/resume/stop, heartbeat, and waiting for clients.

Only this thread touches the simulation; the Redis reader thread hands messages over through
a queue, which the loop drains while it waits between ticks.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gsy_e_sdk.wire import channels
from gsy_local_exchange.redis_api import RedisEdge
from gsy_local_exchange.results import RunResults
from gsy_local_exchange.simulation import Simulation, StepResult

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
MESSAGES_PER_PUMP = 10_000
FAST = "fast"
REALTIME = "realtime"


@dataclass
class RunOptions:
    pace: str | float = FAST  # "fast", "realtime" or wall seconds per slot
    tick_deadline: float = 2.0  # fast pace: longest wait for clients at an event tick
    quiet_gap: float = 0.02  # fast pace: batches this far apart end the wait
    paused: bool = False
    start_when_selected: int = 0
    simulation_id: str = ""


@dataclass
class _Responsiveness:
    """Which aggregators answer events; fast pace waits only for those that do."""

    silent: set[str] = field(default_factory=set)


class ExchangeRunner:
    def __init__(
        self,
        simulation: Simulation,
        edge: RedisEdge,
        options: RunOptions,
        results: RunResults,
        on_slot: Callable[[int, int], None] | None = None,
    ) -> None:
        self.simulation = simulation
        self.edge = edge
        self.options = options
        self.results = results
        self.paused = options.paused
        self.stopped = False
        self._on_slot = on_slot
        self._next_heartbeat = 0.0
        self._responsiveness = _Responsiveness()
        # Event published -> each aggregator's last batch for it, timed inside the exchange.
        self._event_published: float | None = None
        self._event_kind = "tick"
        self._event_audience: set[str] = set()
        self._last_batch: dict[str, float] = {}
        clock = simulation.clock
        if options.pace == REALTIME:
            self._tick_wall = clock.tick_length.total_seconds()
        elif options.pace == FAST:
            self._tick_wall = 0.0
        else:
            self._tick_wall = float(options.pace) / clock.ticks_per_slot
        self._batch_channel = channels.batch_commands()
        self._control = {
            channels.simulation_control(command, options.simulation_id): command
            for command in channels.SIMULATION_CONTROL_COMMANDS
        }

    def channels(self) -> list[str]:
        return [
            channels.AGGREGATOR_COMMANDS,
            channels.AGGREGATOR_COMMANDS_LEGACY,
            channels.batch_commands(),
            *self._control,
            *self.simulation.register_channels(),
        ]

    def run(self) -> None:
        self.edge.subscribe(self.channels())
        logger.info(
            "exchange ready: %d slots of %s, %d ticks each",
            self.simulation.clock.slot_count,
            self.simulation.clock.slot_length,
            self.simulation.clock.ticks_per_slot,
        )
        while not self.stopped and not self.simulation.finished:
            if not self._may_run():
                self._pump(0.1)
                continue
            started = time.monotonic()
            result = self.simulation.step()
            if result.event_aggregators:
                self._close_event_window()
            self.edge.publish(result.messages)
            if result.event_aggregators:
                self._event_published = time.monotonic()
                self._event_kind = "market" if result.slot_started else "tick"
                self._event_audience = set(result.event_aggregators)
            self.results.record(self.simulation, result)
            if result.slot_started and self._on_slot:
                self._on_slot(self.simulation.slot_index, self.simulation.clock.slot_count)
            if result.finished:
                break
            self._pace(result, started)
        self._pump(0)
        self._close_event_window()

    def _may_run(self) -> bool:
        if self.paused:
            return False
        wanted = self.options.start_when_selected
        if wanted and self.simulation.slot_index == 0 and self.simulation.tick == 0:
            return self.simulation.registry.selected_count() >= wanted
        return True

    # ------------------------------------------------------------------ waiting
    def _pace(self, result: StepResult, started: float) -> None:
        if self._tick_wall > 0:
            deadline = started + self._tick_wall
            while not self.stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._pump(left)
            return
        expected = result.event_aggregators - self._responsiveness.silent
        if not expected:
            self._pump(0)
            return
        before = {uuid: self.simulation.batches_received.get(uuid, 0) for uuid in expected}
        deadline = time.monotonic() + self.options.tick_deadline
        while not self.stopped:
            waiting = {uuid for uuid in expected if self.simulation.batches_received.get(uuid, 0) <= before[uuid]}
            left = deadline - time.monotonic()
            if left <= 0:
                self._responsiveness.silent |= waiting
                logger.debug("no batch from %s within %.1f s", sorted(waiting), self.options.tick_deadline)
                break
            if not waiting:
                # Everyone answered; an aggregator split over several workers sends a burst of
                # batches, so wait until the burst is over before running the next tick.
                total = sum(self.simulation.batches_received.values())
                self._pump(min(left, self.options.quiet_gap))
                if sum(self.simulation.batches_received.values()) == total:
                    break
                continue
            self._pump(min(left, 0.05))

    def _pump(self, timeout: float) -> None:
        """Handle queued messages, waiting up to ``timeout`` for the first one.

        At most ``MESSAGES_PER_PUMP``: callers check their deadline between calls, so a flood
        of messages cannot hold the clock back.
        """
        self._heartbeat()
        for _ in range(MESSAGES_PER_PUMP):
            message = self.edge.receive(timeout)
            if message is None:
                return
            self._dispatch(*message)
            timeout = 0

    def _dispatch(self, channel: str, payload: object) -> None:
        command = self._control.get(channel)
        if command is not None:
            self._simulation_control(command, payload)
            return
        sender = (
            payload.get("aggregator_uuid") if channel == self._batch_channel and isinstance(payload, dict) else None
        )
        if not isinstance(sender, str):
            sender = None
        before = self.simulation.batches_received.get(sender, 0) if sender is not None else 0
        self.edge.publish(self.simulation.handle(channel, payload))
        if sender is not None and self.simulation.batches_received.get(sender, 0) != before:
            self._responsiveness.silent.discard(sender)
            if sender in self._event_audience:
                self._last_batch[sender] = time.monotonic()

    def _close_event_window(self) -> None:
        """Record how long the last event took to be answered by every aggregator that answered."""
        if self._event_published is not None and self._last_batch:
            self.results.record_event_latency(
                max(self._last_batch.values()) - self._event_published,
                len(self._last_batch),
                len(self._event_audience),
                self._event_kind,
            )
        self._event_published = None
        self._last_batch = {}

    def _simulation_control(self, command: str, payload: object) -> None:
        if command == "pause":
            self.paused = True
        elif command == "resume":
            self.paused = False
        elif command == "stop":
            self.stopped = True
        transaction_id = payload.get("transaction_id") if isinstance(payload, dict) else None
        logger.info("simulation %s requested", command)
        response = {
            "command": command,
            "simulation_id": self.options.simulation_id,
            "transaction_id": transaction_id,
            "status": "success",
        }
        self.edge.publish(
            [(channels.simulation_control_response(command, self.options.simulation_id), json.dumps(response))]
        )

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + HEARTBEAT_SECONDS
            self.edge.publish([(channels.HEARTBEAT, json.dumps({"time": int(time.time())}))])
