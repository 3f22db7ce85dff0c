"""Batches of aggregator commands (REDIS.md 6): checked on arrival, executed at the next tick.

A batch is refused whole on arrival when it is malformed, too large, or would make the commands
waiting for the tick pass their bound; a re-sent batch is answered again, never applied twice
(``batch_answers``). At the tick, the commands of every batch run in the order of the grid (by
area, then by arrival), and each batch gets one answer envelope.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_local_exchange.aggregators import AggregatorRegistry
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.batch_answers import MB, BatchAnswers, BatchKey, BatchLimits, error_envelope
from gsy_local_exchange.commands import CommandExecutor
from gsy_local_exchange.grid import MarketArea
from gsy_local_exchange.outgoing import Outgoing
from gsy_local_exchange.rejections import rejection_reason

logger = logging.getLogger(__name__)
limited_log = RateLimitedLog(logger)  # what clients send decides how often these are logged


@dataclass
class Batch:
    transaction_id: str
    aggregator_uuid: str
    commands: dict[str, list]
    sequence: int
    responses: dict[str, list[str]] = field(default_factory=dict)  # area uuid -> JSON of each response
    answer_bytes: int = 0
    refused: list[str] = field(default_factory=list)  # why each command refused before execution was

    @property
    def key(self) -> BatchKey:
        return self.aggregator_uuid, self.transaction_id

    def answer(self, area_uuid: str, response: dict) -> None:
        # Serialized one by one so the answer's size is known while the batch executes.
        text = json.dumps(response)
        self.responses.setdefault(area_uuid, []).append(text)
        self.answer_bytes += len(text) + 2

    def refuse(self, area_uuid: str, command: Any, message: str) -> None:
        """Answer one command with an error."""
        response = {
            "command": command.get("type") if isinstance(command, dict) else None,
            "status": "error",
            "area_uuid": area_uuid,
            "message": message,
            "transaction_id": self.transaction_id,
        }
        self.refused.append(rejection_reason(response))
        self.answer(area_uuid, response)

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


class BatchDesk:
    """Batches from their arrival to their answer."""

    def __init__(
        self,
        limits: BatchLimits,
        answers: BatchAnswers,
        executor: CommandExecutor,
        areas: Mapping[str, MarketArea | Asset],
        registry: AggregatorRegistry,
    ) -> None:
        self.limits = limits
        self.answers = answers
        self.executor = executor
        self.areas = areas
        self.registry = registry
        self._area_order = {area_uuid: index for index, area_uuid in enumerate(areas)}
        self.received: dict[str, int] = {}  # aggregator uuid -> batches seen
        self._waiting: list[Batch] = []
        self._queued_commands = 0  # of self._waiting, bounded by limits.max_queued_commands
        self._republish: list[Outgoing] = []
        self._sequence = 0

    def receive(self, payload: Any) -> list[Outgoing]:
        """Take a batch for the next tick; returns an immediate answer when it is refused."""
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
            self.received[aggregator_uuid] = self.received.get(aggregator_uuid, 0) + 1
        key = (aggregator_uuid, transaction_id)
        if key in self.answers:
            # Idempotency: a re-sent batch is never applied twice; its answer is sent again.
            previous = self.answers.replay(key)
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
        self.answers.add(key)
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
            self.answers.store(key, envelope)
            return [(channels.batch_response(aggregator_uuid), envelope)]
        assert isinstance(commands, dict)  # anything else has a reason above
        self._sequence += 1
        self._queued_commands += count
        self._waiting.append(Batch(transaction_id, aggregator_uuid, commands, self._sequence))
        return []

    def take(self) -> list[Batch]:
        """The batches received so far, for this tick; later ones wait for the next."""
        batches, self._waiting, self._queued_commands = self._waiting, [], 0
        return batches

    def take_republished(self) -> list[Outgoing]:
        """Answers of re-sent batches, published with the tick's answers."""
        republished, self._republish = self._republish, []
        return republished

    def execute(self, batches: list[Batch], placed: list[tuple[str, str, str]]) -> list[Outgoing]:
        """Run ``batches``; returns their answers. Orders placed go to ``placed`` (name, side, batch id)."""
        if not batches:
            return []
        owner = self.registry.owner
        work = []
        for batch in batches:
            for area_uuid, commands in batch.commands.items():
                area = self.areas.get(area_uuid)
                batch.responses.setdefault(area_uuid, [])
                if not isinstance(commands, list):
                    commands = [commands]
                if area is None or owner.get(area_uuid) != batch.aggregator_uuid:
                    reason = (
                        f"Area {area_uuid} does not exist"
                        if area is None
                        else f"Area {area_uuid} is not controlled by aggregator {batch.aggregator_uuid}"
                    )
                    for command in commands:
                        batch.refuse(area_uuid, command, reason)
                    continue
                for index, command in enumerate(commands):
                    work.append((self._area_order[area_uuid], batch.sequence, index, area, command, batch))
        work.sort(key=lambda item: item[:3])
        answer_limit = self.limits.max_answer_bytes
        for _, _, _, area, command, batch in work:
            if batch.answer_bytes > answer_limit:
                # Its answer must still fit through Redis to its client: the rest of the batch is refused.
                batch.refuse(
                    area.uuid,
                    command,
                    f"Not executed: the answer to this batch passed {answer_limit / MB:g} MB; "
                    "send fewer commands per batch",
                )
                continue
            try:
                response = self.executor.execute(area, command, batch.transaction_id)
                batch.answer(area.uuid, response)
                if response.get("status") == "ready" and response.get("command") in ("offer", "bid"):
                    placed.append((area.name, response["command"], batch.transaction_id))
            except Exception:  # noqa: BLE001 - a bug in one command must not stop the exchange
                limited_log.error("command %r on %s failed", command, area.uuid, exc_info=True)
                batch.refuse(area.uuid, command, "Internal error while executing the command")
        outgoing = []
        for batch in batches:
            self.executor.rejections.update(batch.refused)
            envelope = batch.envelope()
            self.answers.store(batch.key, envelope)
            outgoing.append((channels.batch_response(batch.aggregator_uuid), envelope))
        return outgoing
