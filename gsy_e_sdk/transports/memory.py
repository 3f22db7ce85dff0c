"""An exchange double in memory and its transports: the SDK's client logic without Redis or HTTP.

``MemoryExchange`` answers commands the way the local exchange does (REDIS.md 3-6): register and
unregister, SELECT/UNSELECT (telling the aggregator), CREATE/DELETE, direct commands, and batches
with one answer per command and area (orders get ids; deletes answer with what they deleted). A
test pushes events with ``publish``. Delivery is synchronous and in order: an answer has been
through the client's bookkeeping when ``send`` returns, an event when ``publish`` returns (its
hooks then run on the client's hook runner). Pure Python: no thread, no socket.

``take_batches = False`` makes the exchange refuse batches (as a failed POST does), and
``answer_batches = False`` take them without answering (a blocked call then waits until
``finish`` or its timeout).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from gsy_e_sdk.commands import Command
from gsy_e_sdk.transports import base
from gsy_e_sdk.transports.base import AggregatorReceiver, Batch, BatchTransport, NotSent, Receiver, Transport
from gsy_e_sdk.wire import json_codec
from gsy_e_sdk.wire.pending import PendingResponses, new_transaction_id

HISTORY = 1000  # commands kept in ``MemoryExchange.received``
OPEN_ORDERS_LIMIT = 1000  # per area
# Batch commands whose answer has another name (REDIS.md 6.5).
ANSWER_NAMES = {"delete_bid": "bid_delete", "delete_offer": "offer_delete"}


class MemoryExchange:
    """``areas`` maps each area's name (its channel prefix) to its uuid."""

    def __init__(self, areas: Mapping[str, str] | None = None) -> None:
        self.areas = dict(areas or {})
        self.received: deque[tuple[str, str, Any]] = deque(maxlen=HISTORY)  # (sender, command, payload)
        self.take_batches = True
        self.answer_batches = True
        self._names = {uuid: name for name, uuid in self.areas.items()}
        self._aggregators: dict[str, MemoryAggregatorTransport] = {}
        self._area_transports: dict[str, MemoryAreaTransport] = {}
        self._selected: dict[str, str] = {}  # device uuid -> aggregator uuid
        self._orders: dict[str, dict[str, str]] = {}  # area uuid -> {order id: "bid" or "offer"}
        self._order_ids = itertools.count(1)

    # What a test does ---------------------------------------------------------------------------

    def publish(self, message: dict[str, Any], aggregator_uuid: str | None = None) -> None:
        """An event (or anything) on an aggregator's events channel; every aggregator's by default."""
        targets = [self._aggregators[aggregator_uuid]] if aggregator_uuid else list(self._aggregators.values())
        for transport in targets:
            transport.receiver._on_event(message)

    def publish_to_area(self, area: str, message: dict[str, Any]) -> None:
        """An event on an area's own channels (the legacy direct mode, REDIS.md 9)."""
        self._area_transports[area].receiver._on_event(message)

    def selected_by(self, device_uuid: str) -> str | None:
        return self._selected.get(device_uuid)

    # What the transports ask --------------------------------------------------------------------

    def area_command(self, area: str, command: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to an asset's or market's command; None (silence) for an unknown area."""
        self.received.append((area, command, payload))
        answer = {"transaction_id": payload.get("transaction_id")}
        if command in (base.SELECT, base.UNSELECT):
            return {**answer, **self._selection(command, payload)}
        if area not in self.areas:
            return None
        if command == base.REGISTER:
            return {
                **answer,
                "command": command,
                "status": "ready",
                "registered": True,
                "device_uuid": self.areas[area],
            }
        if command == base.UNREGISTER:
            return {**answer, "command": command, "status": "ready", "unregistered": True, "response": "success"}
        return {**answer, "command": command, "status": "ready", "area_uuid": self.areas[area]}

    def create(self, transport: MemoryAggregatorTransport, name: str, aggregator_uuid: str | None) -> str:
        uuid = aggregator_uuid or new_transaction_id()
        self.received.append((uuid, "CREATE", {"name": name}))
        self._aggregators[uuid] = transport
        return uuid

    def aggregator_command(self, aggregator_uuid: str, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.received.append((aggregator_uuid, command, payload))
        if command == base.DELETE and self._aggregators.pop(aggregator_uuid, None) is not None:
            status = "deleted"
        else:
            status = "error"
        return {"status": status, "aggregator_uuid": aggregator_uuid, "transaction_id": payload.get("transaction_id")}

    def batch(self, aggregator_uuid: str, transaction_id: str, batch: Batch) -> dict[str, Any] | None:
        """The answer envelope (REDIS.md 6.4); None when ``answer_batches`` is off."""
        self.received.append((aggregator_uuid, base.BATCH, batch))
        if not self.answer_batches:
            return None
        responses = {
            uuid: [
                {
                    "command": ANSWER_NAMES.get(command["type"], command["type"]),
                    "area_uuid": uuid,
                    "transaction_id": transaction_id,
                    **self._run(aggregator_uuid, uuid, command),
                }
                for command in commands
            ]
            for uuid, commands in batch.items()
        }
        return {
            "command": base.BATCH,
            "transaction_id": transaction_id,
            "aggregator_uuid": aggregator_uuid,
            "responses": responses,
        }

    def forget(self, transport: MemoryAreaTransport | MemoryAggregatorTransport) -> None:
        if isinstance(transport, MemoryAreaTransport):
            self._area_transports.pop(transport.area, None)
        else:
            self._aggregators.pop(transport.aggregator_uuid, None)

    # Inside the exchange ------------------------------------------------------------------------

    def _selection(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        aggregator_uuid, device_uuid = payload.get("aggregator_uuid"), payload.get("device_uuid")
        if aggregator_uuid not in self._aggregators or device_uuid not in self._names:
            return {"status": "error", "msg": f"cannot {command} {aggregator_uuid} for {device_uuid}"}
        transport = self._aggregators[aggregator_uuid]
        if command == base.SELECT:
            self._selected[device_uuid] = aggregator_uuid
        else:
            self._selected.pop(device_uuid, None)
        # As on Redis: the aggregator hears of it before the device's call returns.
        transport.receiver._on_selection(device_uuid, command == base.SELECT)
        status = "SELECTED" if command == base.SELECT else "UNSELECTED"
        return {"status": status, "aggregator_uuid": aggregator_uuid, "device_uuid": device_uuid}

    def _run(self, aggregator_uuid: str, uuid: str, command: Command) -> dict[str, Any]:
        """One batch command of an area: its answer's status and result."""
        if self._selected.get(uuid) != aggregator_uuid:
            return {"status": "error", "error_message": f"{uuid} is not controlled by aggregator {aggregator_uuid}"}
        kind, orders = command["type"], self._orders.setdefault(uuid, {})
        if kind in ("bid", "offer"):
            if command.get("replace_existing"):
                for order_id in [order_id for order_id, order_kind in orders.items() if order_kind == kind]:
                    del orders[order_id]
            if len(orders) >= OPEN_ORDERS_LIMIT:
                return {"status": "error", "error_message": f"{OPEN_ORDERS_LIMIT} open orders already"}
            order_id = f"{kind}-{next(self._order_ids)}"
            orders[order_id] = kind
            trader = {"buyer" if kind == "bid" else "seller": self._names[uuid]}
            order = {"id": order_id, "energy": command["energy"], "energy_rate": command["price"] / command["energy"]}
            return {"status": "ready", kind: json_codec.dumps(order | trader)}
        if kind in ("delete_bid", "delete_offer"):
            target = kind.removeprefix("delete_")
            wanted = command.get(target)
            deleted = [key for key, value in orders.items() if value == target and wanted in (None, key)]
            for order_id in deleted:
                del orders[order_id]
            return {"status": "ready", f"deleted_{target}s": deleted}
        if kind in ("list_bids", "list_offers"):
            target = kind.removeprefix("list_").rstrip("s")
            return {"status": "ready", f"{target}_list": [key for key, value in orders.items() if value == target]}
        return {"status": "ready"}


class MemoryAreaTransport(Transport):
    """An asset or market of a ``MemoryExchange``, addressed by name; an unanswered blocking
    command raises ``error`` at once."""

    receiver: Receiver  # set by open()

    def __init__(self, exchange: MemoryExchange, area: str, *, error: type[Exception] = TimeoutError) -> None:
        self.exchange = exchange
        self.area = area
        self.error = error

    def __repr__(self) -> str:
        return f"MemoryAreaTransport({self.area!r})"

    def open(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.exchange._area_transports[self.area] = self

    def send(self, command: str, payload: dict[str, Any], *, wait: bool) -> Any:
        answer = self.exchange.area_command(self.area, command, payload)
        if answer is None:
            if wait:
                raise self.error(f"{command} of {self.area}: nobody answered")
            return None
        self.receiver._on_answer(command, answer)
        return answer if wait else None

    def close(self) -> None:
        self.exchange.forget(self)


class MemoryAggregatorTransport(BatchTransport):
    """An aggregator of a ``MemoryExchange``; a batch nobody answers raises ``error`` after
    ``timeout`` seconds, unless ``finish`` releases it first."""

    receiver: AggregatorReceiver  # set by open()

    def __init__(
        self, exchange: MemoryExchange, *, error: type[Exception] = TimeoutError, timeout: float = 1.0
    ) -> None:
        self.exchange = exchange
        self.error = error
        self.timeout = timeout
        self.aggregator_uuid = ""
        self._pending = PendingResponses()
        self._waiting: set[str] = set()  # transaction ids of blocked batch calls
        self._finished = False

    def __repr__(self) -> str:
        return f"MemoryAggregatorTransport({self.aggregator_uuid})"

    def attach(self, name: str, aggregator_uuid: str | None = None) -> str:
        self.aggregator_uuid = self.exchange.create(self, name, aggregator_uuid)
        return self.aggregator_uuid

    def open(self, receiver: Receiver) -> None:
        self.receiver = base.aggregator_receiver(receiver)

    def send(self, command: str, payload: dict[str, Any], *, wait: bool) -> Any:
        answer = self.exchange.aggregator_command(self.aggregator_uuid, command, payload)
        return answer if wait else None

    def send_batch(self, batch: Batch, *, wait: bool) -> dict[str, Any] | None:
        if not self.exchange.take_batches:
            raise NotSent(f"the exchange refused a batch of {self.aggregator_uuid}")
        transaction_id = new_transaction_id()
        future: Future | None = None
        if wait:
            future = self._pending.expect(transaction_id)
            self._waiting.add(transaction_id)
        try:
            if self._finished:
                return None
            envelope = self.exchange.batch(self.aggregator_uuid, transaction_id, batch)
            if envelope is not None:
                self.deliver_batch_answer(envelope)
            if future is None:
                return None
            return self._pending.wait(
                transaction_id, future, self.timeout, self.error, "Sending batch commands timed out.", base.BATCH
            )
        finally:
            self._waiting.discard(transaction_id)
            self._pending.discard(transaction_id)

    def deliver_batch_answer(self, envelope: dict[str, Any]) -> None:
        """An answer envelope arrives (tests push malformed ones through here too)."""
        if self.receiver._on_batch_answer(envelope):
            self._pending.resolve(envelope["transaction_id"], envelope)

    def finished(self) -> None:
        self._finished = True
        for transaction_id in list(self._waiting):
            self._pending.resolve(transaction_id, None)

    def close(self) -> None:
        self.exchange.forget(self)
