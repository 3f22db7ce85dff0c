"""The facade's link to the exchange: publish requests on Redis, route answers to websockets.

One ``RedisConnection`` (the SDK's: one pool, one pub/sub reader per process) serves the whole
facade. Channels of an area or aggregator are subscribed the first time it is used and stay
subscribed, so a response is never lost between a request and the socket opening.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.pending import new_transaction_id
from gsy_e_sdk.wire.redis_connection import RedisConnection
from gsy_local_exchange.descriptor import Descriptor, Node, read_descriptor
from gsy_local_exchange.http.hub import WebsocketHub

logger = logging.getLogger(__name__)

DESCRIPTOR_TTL_S = 2.0
AGGREGATOR_COMMAND_TIMEOUT_S = 10.0
# Commands the facade sends on its own behalf carry this prefix; their answers are not relayed.
OWN_TRANSACTION = "facade-"
_AREA_COMMANDS = (*channels.ASSET_DIRECT_COMMANDS, *channels.MARKET_DIRECT_COMMANDS)
_EVENTS = ("market", "tick", "trade", "finish")
_SELECTION_EVENTS = {"SELECTED": "selected_by_device", "UNSELECTED": "unselected_by_device"}


class ExchangeUnavailable(RuntimeError):
    """No exchange has described itself in this Redis, or it stopped answering."""


def area_key(area_uuid: str) -> str:
    return f"area:{area_uuid}"


def aggregator_key(aggregator_uuid: str) -> str:
    return f"aggregator:{aggregator_uuid}"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


class ExchangeRelay:
    def __init__(self, connection: RedisConnection, hub: WebsocketHub) -> None:
        self.connection = connection
        self.hub = hub
        self._descriptor: Descriptor | None = None
        self._nodes: dict[str, Node] = {}
        self._read_at = 0.0
        self._watched: set[str] = set()
        self._markets_registered: set[str] = set()
        self._lock = threading.Lock()

    # The exchange's description --------------------------------------------------------------
    def descriptor(self) -> Descriptor:
        """The running exchange's descriptor, re-read at most every 2 s (it changes on restart)."""
        now = time.monotonic()
        if self._descriptor is None or now - self._read_at > DESCRIPTOR_TTL_S:
            descriptor = read_descriptor(self.connection.redis)
            if descriptor is None:
                raise ExchangeUnavailable("no exchange is running on this Redis")
            with self._lock:
                if self._descriptor is None or descriptor.run_id != self._descriptor.run_id:
                    self._nodes = descriptor.nodes()
                    self._watched.clear()  # a new run: subscribe again on first use
                    self._markets_registered.clear()
                self._descriptor, self._read_at = descriptor, now
        return self._descriptor

    def node(self, area_uuid: str) -> Node | None:
        self.descriptor()
        return self._nodes.get(area_uuid)

    def reader_problem(self) -> str | None:
        """Why answers and events would no longer reach websockets, or None."""
        self.connection.watch_aggregator_responses()  # starts the reader if nothing has yet
        if not self.connection.reader_alive:
            return "the facade's Redis reader has stopped: no answer or event reaches a websocket"
        return None

    # Areas (assets and markets) --------------------------------------------------------------
    def watch_area(self, node: Node) -> None:
        """Route the area's responses (and an asset's direct-mode events) to its websocket."""
        key = area_key(node.uuid)
        with self._lock:  # concurrent requests must not subscribe the same area twice
            if key in self._watched or node.prefix is None:
                return
            self._subscribe_area(node, node.prefix, key)

    def _subscribe_area(self, node: Node, prefix: str, key: str) -> None:
        names = [
            channels.register_response(prefix),
            channels.unregister_response(prefix),
            *(
                channels.area_command_response(prefix, command)
                for command in (*_AREA_COMMANDS, *channels.SELF_ANSWERED_COMMANDS)
            ),
        ]
        if not node.is_market:
            # Direct mode (REDIS.md 9); the hosted exchange sends no events to market sockets.
            names.extend(channels.area_event(prefix, event) for event in _EVENTS)

        def forward(_channel: str, payload: dict[str, Any]) -> None:
            transaction_id = payload.get("transaction_id")
            if isinstance(transaction_id, str) and transaction_id.startswith(OWN_TRANSACTION):
                return
            if "command" in payload:
                self.hub.deliver(key, encode(payload), hold=True)
            elif "event" in payload:
                self.hub.deliver(key, encode(payload))

        self.connection.subscribe(dict.fromkeys(names, forward))
        self._watched.add(key)

    def area_request(self, node: Node, command: str, payload: dict[str, Any]) -> None:
        """Publish a request on ``<prefix>/<command>``; the answer reaches the area's socket."""
        prefix = node.prefix
        if prefix is None:  # Facade refuses areas without one before anything is relayed
            raise ValueError(f"area {node.uuid} accepts no external connections")
        self.watch_area(node)
        if node.is_market:
            self._register_market(node, prefix)
        self.connection.publish(channels.area_command(prefix, command), payload)

    def _register_market(self, node: Node, prefix: str) -> None:
        """Markets need no registration on the hosted platform; the exchange's direct mode does."""
        with self._lock:
            if node.uuid in self._markets_registered:
                return
            self._markets_registered.add(node.uuid)
        self.connection.publish(
            channels.register(prefix), {"name": prefix, "transaction_id": OWN_TRANSACTION + new_transaction_id()}
        )

    # Aggregators -----------------------------------------------------------------------------
    def watch_aggregator(self, aggregator_uuid: str) -> None:
        key = aggregator_key(aggregator_uuid)
        simulation_id = self.descriptor().simulation_id
        with self._lock:  # concurrent requests must not subscribe the same aggregator twice
            if key not in self._watched:
                self._subscribe_aggregator(aggregator_uuid, key, simulation_id)

    def _subscribe_aggregator(self, aggregator_uuid: str, key: str, simulation_id: str) -> None:

        def forward_event(_channel: str, payload: dict[str, Any]) -> None:
            if "simulation_id" in payload:
                payload["simulation_id"] = simulation_id  # REST.md 4.3: the configuration id, not null
            self.hub.deliver(key, encode(payload))

        def forward_response(_channel: str, payload: dict[str, Any]) -> None:
            self.hub.deliver(key, encode(payload), hold=True)

        def forward_selection(payload: dict[str, Any]) -> None:
            # On the reader thread, in the order Redis delivered it: a selection that starts the
            # run reaches the socket before the run's first events (REST.md, reference behaviour 2).
            event = _SELECTION_EVENTS.get(payload.get("status"))  # type: ignore[arg-type]
            device_uuid = payload.get("device_uuid")
            if event is not None and isinstance(device_uuid, str):
                self.hub.deliver(key, encode({"event": event, "device_uuid": device_uuid}), hold=True)

        self.connection.subscribe(
            {
                channels.aggregator_events(aggregator_uuid): forward_event,
                channels.batch_response(aggregator_uuid): forward_response,
            }
        )
        self.connection.watch_aggregator_responses(aggregator_uuid, forward_selection)
        self._watched.add(key)

    def forget_aggregator(self, aggregator_uuid: str) -> None:
        self.connection.forget_aggregator(aggregator_uuid)

    def aggregator_command(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one ``aggregator-commands`` message and wait for its ``aggregator-response``."""
        self.connection.watch_aggregator_responses()
        transaction_id = payload["transaction_id"]
        pending = self.connection.pending
        future = pending.expect(transaction_id)
        self.connection.publish(channels.AGGREGATOR_COMMANDS, payload)
        return pending.wait(
            transaction_id,
            future,
            AGGREGATOR_COMMAND_TIMEOUT_S,
            ExchangeUnavailable,
            "The exchange did not answer",
            str(payload.get("type")),
        )

    def send_batch(self, aggregator_uuid: str, batch: dict[str, Any], transaction_id: str) -> None:
        self.watch_aggregator(aggregator_uuid)
        self.connection.publish(
            channels.batch_commands(),
            {
                "type": "BATCHED",
                "transaction_id": transaction_id,
                "aggregator_uuid": aggregator_uuid,
                "batch_commands": batch,
            },
        )

    @staticmethod
    def transaction_id(body: dict[str, Any]) -> str:
        value = body.get("transaction_id")
        return value if isinstance(value, str) and value else new_transaction_id()
