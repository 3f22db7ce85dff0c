"""What a REST client does with the messages of its websocket (REST.md 4.2, SDK_API.md 5.4).

Dispatch rule: an object with ``event`` is an event, else one with ``command`` is a command
response, anything else is ignored; both kinds also reach ``on_event_or_response``. Command
responses are matched to the call waiting for them by ``(command, transaction_id)`` through
futures registered *before* the HTTP request is sent, so a fast answer is never missed and
nobody polls. A response nobody waits for yet is kept (boundedly) for a later
``wait_for_command_response``.

Runs on the websocket loop thread: bookkeeping happens here, user hooks go to the client's
``HookRunner`` (the shared executor).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, ClassVar

from gsy_e_sdk.constants import REST_COMMAND_TIMEOUT
from gsy_e_sdk.utils import log_bid_offer_confirmation, log_trade_info
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

    def __init__(self, rest_client: Any) -> None:
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
        raise NotImplementedError

    def _on_command_response(self, message: dict[str, Any]) -> None:
        log_bid_offer_confirmation(message)
        self.resolve(message.get("command"), message.get("transaction_id"), message)
        self._notify(message)

    def _notify(self, message: dict[str, Any]) -> None:
        self.client._hooks.submit("on_event_or_response", self.client.on_event_or_response, message)

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
    """Messages of an asset's or market's own socket.

    Events reach assets only in the legacy direct mode (the hosted exchange sends events to
    aggregators); they are dispatched to the client's hooks when the client has them.
    """

    _HOOKS: ClassVar[dict[str, str]] = {
        "market": "on_market_slot",
        "tick": "on_tick",
        "trade": "on_trade",
        "finish": "on_finish",
    }

    def _on_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event == "finish":
            self.client.is_finished = True
        elif event == "trade":
            for trade in message.get("trade_list") or []:
                log_trade_info(trade)
        name = self._HOOKS.get(event)
        hook = getattr(self.client, name, None) if name else None
        calls = [(name, hook, (message,))] if hook is not None else []
        if name is None:
            _dropped.warning("Unknown event %r on the websocket of %s.", event, self.client)
        elif hook is None:
            logger.debug("%s has no %s hook; event %r ignored.", self.client, name, event)
        calls.append(("on_event_or_response", self.client.on_event_or_response, (message,)))
        self.client._hooks.submit_event(event, calls)

    def _on_command_response(self, message: dict[str, Any]) -> None:
        command = message.get("command")
        if command == "register":
            self.client.registered = bool(message.get("registered"))
        elif command == "unregister":
            self.client.registered = False
        super()._on_command_response(message)
