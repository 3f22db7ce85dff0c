"""Registration and aggregator selection for one asset or market over Redis (SDK_API.md 4.1)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.client_interface import APIClientInterface
from gsy_e_sdk.constants import AGGREGATOR_COMMAND_TIMEOUT, DIRECT_COMMAND_TIMEOUT, REGISTER_TIMEOUT
from gsy_e_sdk.hooks import HookedClient
from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.incoming import AreaResponse, check
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.pending import new_transaction_id
from gsy_e_sdk.wire.redis_connection import get_connection

logger = logging.getLogger(__name__)
_dropped = RateLimitedLog(logger)

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class RedisAPIException(Exception):
    pass


@dataclass(frozen=True)
class AreaChannelNames:
    register: str
    register_response: str
    unregister: str
    unregister_response: str
    all_messages: str

    @classmethod
    def for_prefix(cls, prefix: str) -> AreaChannelNames:
        return cls(
            register=channels.register(prefix),
            register_response=channels.register_response(prefix),
            unregister=channels.unregister(prefix),
            unregister_response=channels.unregister_response(prefix),
            # A glob pattern: escape the characters of the name that Redis would interpret.
            all_messages=channels.area_wildcard(_GLOB_SPECIAL.sub(r"\\\1", prefix)),
        )


class RedisClientBase(HookedClient, APIClientInterface):
    """A registered asset or market, identified by its channel prefix ``area_id``.

    ``pubsub_thread`` is accepted for compatibility: every client of the process shares one
    connection and one reader anyway (``gsy_e_sdk.wire.redis_connection``).
    """

    def __init__(
        self, area_id: str, autoregister: bool = True, redis_url: str | None = None, pubsub_thread: Any = None
    ) -> None:
        self.area_id = validation.area_uuid(area_id, "area_id")
        self.area_uuid: str | None = None
        self.device_uuid = None  # legacy attribute, always None
        self.is_active = False
        self.channel_names = AreaChannelNames.for_prefix(area_id)
        self._connection = get_connection(redis_url)
        self.redis_db = self._connection.redis
        self.pubsub = self._connection.pubsub
        self._start_hooks(area_id)
        self.executor = self._hooks.executor
        self._channel_handlers = {
            self.channel_names.register_response: self._on_register_response,
            self.channel_names.unregister_response: self._on_unregister_response,
        }
        # The catch-all pattern only feeds on_event_or_response: skip it when nobody listens,
        # since Redis matches every pattern against every published message.
        self._pattern_handlers = (
            {self.channel_names.all_messages: self._on_area_message}
            if type(self).on_event_or_response is not RedisClientBase.on_event_or_response
            else {}
        )
        self._connection.subscribe(self._channel_handlers, self._pattern_handlers)
        self._answer_channels: set[str] = set()  # of direct commands, subscribed on first use
        self._connection.watch_aggregator_responses()
        if autoregister:
            self.register(is_blocking=True)

    # Hooks ------------------------------------------------------------------------------------

    def on_register(self, registration_info: dict[str, Any]) -> None:
        """Called after a successful registration with the exchange's response."""

    def on_event_or_response(self, message: dict[str, Any]) -> None:
        """Called with every message on ``<area_id>/*``."""

    # Registration -----------------------------------------------------------------------------

    def register(self, is_blocking: bool = True) -> None:
        if self.is_active:
            raise RedisAPIException("API is already registered to the market.")
        response = self._request(
            self.channel_names.register,
            "register",
            is_blocking,
            "API registration process timed out. Server will continue processing your request "
            "on the background and will notify you as soon as the registration has been "
            "completed.",
        )
        if is_blocking and not self.is_active:
            raise RedisAPIException(f"Registration of {self.area_id} failed: {response}")

    def unregister(self, is_blocking: bool = True) -> None:
        if not self.is_active:
            raise RedisAPIException("API is already unregistered from the market.")
        response = self._request(
            self.channel_names.unregister,
            "unregister",
            is_blocking,
            "API unregister process timed out. Server will continue processing your request on "
            "the background and will notify you as soon as the unregistration has been "
            "completed.",
        )
        if is_blocking and not _unregistered(response):
            raise RedisAPIException(
                f"Failed to unregister from market {self.area_id}. Deactivating connection. (response: {response})"
            )

    def _request(self, channel: str, command: str, is_blocking: bool, timeout_text: str) -> Any:
        return self._connection.request(
            channel,
            {"name": self.area_id, "transaction_id": new_transaction_id()},
            owner=self,
            wait=is_blocking,
            timeout=REGISTER_TIMEOUT,
            error=RedisAPIException,
            message=timeout_text,
            command=command,
        )

    def _on_register_response(self, channel: str, payload: dict[str, Any]) -> None:
        if not check(AreaResponse, payload, _dropped, channel):
            return
        transaction_id = payload.get("transaction_id")
        if not self._connection.pending.owned_by(transaction_id, self):
            logger.debug(
                "Ignoring a register response for %s not requested here (transaction %s)", self.area_id, transaction_id
            )
            return
        if payload.get("device_uuid"):
            self.area_uuid = payload["device_uuid"]
            self.is_active = True
            self._hooks.submit("on_register", self.on_register, payload)
        else:
            logger.error("Registration of %s failed: %s", self.area_id, payload)
        self._connection.pending.resolve(transaction_id, payload)

    def _on_unregister_response(self, _channel: str, payload: dict[str, Any]) -> None:
        transaction_id = payload.get("transaction_id")
        if not self._connection.pending.owned_by(transaction_id, self):
            if payload.get("status") == "error":
                logger.warning("Unregister of %s: %s", self.area_id, payload.get("error_message"))
            return
        if not _unregistered(payload):
            logger.error("Failed to unregister from market %s. Deactivating connection. (%s)", self.area_id, payload)
        self.is_active = False
        self._connection.pending.resolve(transaction_id, payload)

    # Aggregator selection ---------------------------------------------------------------------

    def select_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Hand control of this area to an aggregator; the transaction id when blocking."""
        if self.area_uuid is None:
            raise RedisAPIException("The device/market has not ben registered yet, can not select an aggregator")
        return self._aggregator_command("SELECT", aggregator_uuid, is_blocking)

    def unselect_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Take control back from an aggregator; the transaction id when blocking."""
        if self.area_uuid is None:
            raise RedisAPIException("The device/market has not ben registered yet, can not unselect an aggregator")
        return self._aggregator_command("UNSELECT", aggregator_uuid, is_blocking)

    def _aggregator_command(self, kind: str, aggregator_uuid: str, is_blocking: bool) -> str | None:
        validation.area_uuid(aggregator_uuid, "aggregator_uuid")
        transaction_id = new_transaction_id()
        response = self._connection.request(
            channels.AGGREGATOR_COMMANDS,
            {
                "aggregator_uuid": aggregator_uuid,
                "device_uuid": self.area_uuid,
                "type": kind,
                "transaction_id": transaction_id,
            },
            owner=self,
            wait=is_blocking,
            timeout=AGGREGATOR_COMMAND_TIMEOUT,
            error=RedisAPIException,
            message="API has timed out.",
            command=kind,
        )
        if not is_blocking:
            return None
        if response.get("status") == "error":
            logger.warning(
                "%s of aggregator %s by %s was refused: %s",
                kind,
                aggregator_uuid,
                self.area_id,
                response.get("msg", response),
            )
        return transaction_id

    # Direct commands (REDIS.md 9) ---------------------------------------------------------------

    def _direct_command(self, command: str, body: dict[str, Any], wait: bool) -> dict[str, Any] | None:
        """A command on the area's own channel, as the REST clients' calls are relayed; its answer.

        The exchange runs it at its next tick. The answer channel is subscribed on first use, so
        clients that never send one cost nothing.
        """
        answers = channels.area_command_response(self.area_id, command)
        if answers not in self._answer_channels:
            self._connection.subscribe({answers: self._on_direct_answer})
            self._answer_channels.add(answers)
        return self._connection.request(
            channels.area_command(self.area_id, command),
            {**body, "transaction_id": new_transaction_id()},
            owner=self,
            wait=wait,
            timeout=DIRECT_COMMAND_TIMEOUT,
            error=RedisAPIException,
            message="API has timed out.",
            command=command,
        )

    def _on_direct_answer(self, channel: str, payload: dict[str, Any]) -> None:
        # Forecasts are answered on their request channel: skip our own request, which has neither.
        if ("command" in payload or "status" in payload) and check(AreaResponse, payload, _dropped, channel):
            self._connection.pending.resolve(payload.get("transaction_id"), payload)

    # Messages on <area_id>/* ------------------------------------------------------------------

    def _on_area_message(self, _channel: str, payload: dict[str, Any]) -> None:
        event = payload.get("event")  # direct-mode events (REDIS.md 9): a stale tick may be skipped
        self._hooks.submit_event(
            event if isinstance(event, str) else None, [("on_event_or_response", self.on_event_or_response, (payload,))]
        )

    def close(self) -> None:
        """Stop receiving messages for this client (the shared connection stays open)."""
        self._connection.unsubscribe(
            {**self._channel_handlers, **dict.fromkeys(self._answer_channels, self._on_direct_answer)},
            self._pattern_handlers,
        )


def _unregistered(response: Any) -> bool:
    """gsy-e answers ``status: ready``, the original SDK wanted ``response: success``."""
    return isinstance(response, dict) and (response.get("response") == "success" or response.get("status") == "ready")
