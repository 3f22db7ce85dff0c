"""Aggregators and which devices selected them (REDIS.md 4). No I/O.

Unlike gsy-e, unknown aggregators and double selection are rejected with the error shape of
the protocol, and DELETE releases the aggregator's devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Aggregator:
    uuid: str
    name: str
    devices: dict[str, None] = field(default_factory=dict)  # insertion-ordered set


class AggregatorRegistry:
    def __init__(self, is_selectable) -> None:
        """``is_selectable(device_uuid) -> str`` returns an error text, or "" when selectable."""
        self.aggregators: dict[str, Aggregator] = {}
        self.owner: dict[str, str] = {}
        self._is_selectable = is_selectable

    def handle(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Apply one ``aggregator-commands`` message; returns the response or None if unanswerable."""
        transaction_id = message.get("transaction_id")
        if not isinstance(transaction_id, str) or not transaction_id:
            return None
        command = message.get("type")
        handlers = {"CREATE": self._create, "DELETE": self._delete, "SELECT": self._select, "UNSELECT": self._unselect}
        handler = handlers.get(command) if isinstance(command, str) else None
        if handler is None:
            return {
                "status": "error",
                "transaction_id": transaction_id,
                "msg": f"Unknown aggregator command type {command!r}; expected CREATE, DELETE, SELECT or UNSELECT",
            }
        return handler(message, transaction_id)

    def _create(self, message: dict, transaction_id: str) -> dict:
        if transaction_id in self.aggregators:
            return {"status": "error", "aggregator_uuid": transaction_id, "transaction_id": transaction_id}
        name = message.get("name")
        self.aggregators[transaction_id] = Aggregator(transaction_id, str(name) if name is not None else "")
        return {"status": "ready", "name": name, "transaction_id": transaction_id}

    def _delete(self, message: dict, transaction_id: str) -> dict:
        aggregator_uuid = message.get("aggregator_uuid")
        aggregator = self.aggregators.pop(aggregator_uuid, None) if isinstance(aggregator_uuid, str) else None
        if aggregator is None:
            return {"status": "error", "aggregator_uuid": aggregator_uuid, "transaction_id": transaction_id}
        for device in aggregator.devices:
            self.owner.pop(device, None)
        return {"status": "deleted", "aggregator_uuid": aggregator_uuid, "transaction_id": transaction_id}

    def _select(self, message: dict, transaction_id: str) -> dict:
        aggregator_uuid = message.get("aggregator_uuid")
        device_uuid = message.get("device_uuid")
        response = {"aggregator_uuid": aggregator_uuid, "device_uuid": device_uuid, "transaction_id": transaction_id}
        aggregator = self.aggregators.get(aggregator_uuid) if isinstance(aggregator_uuid, str) else None
        if aggregator is None:
            return {"status": "error", **response, "msg": f"Aggregator {aggregator_uuid} does not exist"}
        if not isinstance(device_uuid, str):
            return {"status": "error", **response, "msg": "device_uuid is missing"}
        problem = self._is_selectable(device_uuid)
        if problem:
            return {"status": "error", **response, "msg": problem}
        if device_uuid in self.owner:
            return {"status": "error", **response, "msg": f"Device already have selected {self.owner[device_uuid]}"}
        self.owner[device_uuid] = aggregator.uuid
        aggregator.devices[device_uuid] = None
        return {"status": "SELECTED", **response}

    def _unselect(self, message: dict, transaction_id: str) -> dict:
        aggregator_uuid = message.get("aggregator_uuid")
        device_uuid = message.get("device_uuid")
        response = {"aggregator_uuid": aggregator_uuid, "device_uuid": device_uuid, "transaction_id": transaction_id}
        # (A missing aggregator_uuid must not match the None of a device nobody selected.)
        if (
            not isinstance(device_uuid, str)
            or not isinstance(aggregator_uuid, str)
            or self.owner.get(device_uuid) != aggregator_uuid
        ):
            return {
                "status": "error",
                **response,
                "msg": f"Error unselecting aggregator : device {device_uuid} has not selected {aggregator_uuid}",
            }
        self.release(device_uuid)
        return {"status": "UNSELECTED", **response}

    def release(self, device_uuid: str) -> None:
        aggregator_uuid = self.owner.pop(device_uuid, None)
        if aggregator_uuid in self.aggregators:
            self.aggregators[aggregator_uuid].devices.pop(device_uuid, None)

    def selected_count(self) -> int:
        return len(self.owner)
