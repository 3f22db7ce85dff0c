"""How the REST transport routes the messages of a websocket (REST.md 4.2, SDK_API.md 5.4).

Dispatch rule: an object with ``event`` is an event, else one with ``command`` is a command
response, anything else is ignored; one without the protocol's shape is logged (rate-limited)
and dropped. Command responses are matched to the call waiting for them by ``(command,
transaction_id)`` through futures registered *before* the HTTP request is sent, so a fast answer
is never missed and nobody polls. A response nobody waits for yet is kept (boundedly) for a later
``wait_for_command_response``.

Runs on the websocket loop thread and hands every message to the client it serves (a
``gsy_e_sdk.transports.base.Receiver``), whose logic does the bookkeeping and queues the hooks.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from gsy_e_sdk.constants import REST_COMMAND_TIMEOUT
from gsy_e_sdk.transports.base import BATCH, AggregatorReceiver, Receiver
from gsy_e_sdk.utils import log_bid_offer_confirmation
from gsy_e_sdk.wire.incoming import AggregatorEvent, CommandResponse, check
from gsy_e_sdk.wire.log_limit import RateLimitedLog

logger = logging.getLogger(__name__)
_dropped = RateLimitedLog(logger)

UNCLAIMED_LIMIT = 1000

Key = tuple[str, str]


class CommandResponseTimeout(AssertionError):
    """No websocket response for a command in time (an ``AssertionError``, as in the original)."""


class WebsocketMessageReceiver:
    """Dispatch rule and response matching shared by the asset/market and aggregator receivers."""

    def __init__(self, rest_client: Receiver) -> None:
        self.client = rest_client
        self._waiting: dict[Key, Future] = {}
        self._unclaimed: OrderedDict[Key, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    # Incoming -----------------------------------------------------------------------------------

    def received_message(self, message: dict[str, Any]) -> None:
        """Dispatch one frame's object; one without the protocol's shape is logged and dropped."""
        where = f"the websocket of {self.client!r}"
        if "event" in message:
            if check(AggregatorEvent, message, _dropped, where):
                self._on_event(message)
        elif "command" in message:
            if check(CommandResponse, message, _dropped, where):
                self._on_command_response(message)

    def _on_event(self, message: dict[str, Any]) -> None:
        self.client._on_event(message)

    def _on_command_response(self, message: dict[str, Any]) -> None:
        log_bid_offer_confirmation(message)
        self.resolve(message.get("command"), message.get("transaction_id"), message)
        self.client._on_traffic(message)

    # Matching -----------------------------------------------------------------------------------

    def expect(self, command: str, transaction_id: str) -> Future:
        """Register interest before sending the request; the answer waits here until collected."""
        with self._lock:
            return self._waiting.setdefault((command, transaction_id), Future())

    def discard(self, command: str, transaction_id: str) -> None:
        with self._lock:
            self._waiting.pop((command, transaction_id), None)

    def resolve(self, command: Any, transaction_id: Any, payload: Any) -> bool:
        """Hand ``payload`` to its waiter; kept for later when nobody waits. True if delivered.

        A resolved future stays registered until ``wait_for_command_response`` collects it, so
        an answer that arrives before the caller starts waiting is not lost.
        """
        if not isinstance(command, str) or not isinstance(transaction_id, str):
            return False
        key = (command, transaction_id)
        with self._lock:
            future = self._waiting.get(key)
            if future is None or future.done():
                self._unclaimed[key] = payload
                while len(self._unclaimed) > UNCLAIMED_LIMIT:
                    self._unclaimed.popitem(last=False)
                return False
            future.set_result(payload)
        return True

    def release(self, command: str, payload: Any = None) -> None:
        """Answer every waiter of ``command`` with ``payload`` (e.g. None after ``finish``)."""
        with self._lock:
            for key, future in self._waiting.items():
                if key[0] == command and not future.done():
                    future.set_result(payload)

    def connection_lost(self) -> None:
        """The socket dropped: answers in flight will never arrive, so waiters get None now."""
        with self._lock:
            pending = [future for future in self._waiting.values() if not future.done()]
            for future in pending:
                future.set_result(None)
        if pending:
            logger.warning(
                "%r: websocket lost with %d command answer(s) outstanding; those calls return None.",
                self.client,
                len(pending),
            )

    def wait_for_command_response(
        self, command_name: str, transaction_id: str, timeout: float = REST_COMMAND_TIMEOUT
    ) -> Any:
        """The response with this command and transaction id; ``CommandResponseTimeout`` if none."""
        key = (command_name, transaction_id)
        with self._lock:
            future = self._waiting.get(key)
            if future is None:
                if key in self._unclaimed:
                    return self._unclaimed.pop(key)
                future = self._waiting[key] = Future()
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise CommandResponseTimeout(
                f"No websocket response for command {command_name} (transaction_id: "
                f"{transaction_id}) within {timeout:g} s"
            ) from None
        finally:
            with self._lock:
                if self._waiting.get(key) is future:
                    del self._waiting[key]


class DeviceWebsocketMessageReceiver(WebsocketMessageReceiver):
    """Messages of an asset's or market's own socket: answers go to the client's bookkeeping
    (``registered`` ...) before their caller gets them. Events reach assets only in the legacy
    direct mode (the hosted exchange sends events to aggregators)."""

    def _on_command_response(self, message: dict[str, Any]) -> None:
        self.client._on_answer(message["command"], message)
        super()._on_command_response(message)


class AggregatorWebsocketMessageReceiver(WebsocketMessageReceiver):
    """Messages of the aggregator socket: events, selections and batch answers (REST.md 4.3)."""

    client: AggregatorReceiver

    def __init__(self, rest_client: AggregatorReceiver) -> None:
        super().__init__(rest_client)

    def _on_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event in ("selected_by_device", "unselected_by_device"):
            self.client._on_selection(message.get("device_uuid"), event == "selected_by_device")
            self.client._on_traffic(message)
        else:
            self.client._on_event(message)

    def _on_command_response(self, message: dict[str, Any]) -> None:
        if message["command"] != BATCH:
            super()._on_command_response(message)
            return
        owner = message.get("aggregator_uuid")
        if owner is not None and owner != self.client.aggregator_uuid:
            logger.debug("Ignoring a batch answer for aggregator %s.", owner)
            return
        if self.client._on_batch_answer(message):
            self.resolve(BATCH, message["transaction_id"], message)
