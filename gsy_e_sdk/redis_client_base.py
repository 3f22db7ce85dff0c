"""Registration and aggregator selection for one asset or market over Redis (SDK_API.md 4.1)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.client_interface import APIClientInterface
from gsy_e_sdk.constants import AGGREGATOR_COMMAND_TIMEOUT, REGISTER_TIMEOUT
from gsy_e_sdk.hooks import HookRunner
from gsy_e_sdk.pending import new_transaction_id
from gsy_e_sdk.redis_connection import get_connection
from gsy_e_sdk.wire import channels

logger = logging.getLogger(__name__)

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


class RedisClientBase(APIClientInterface):
    """A registered asset or market, identified by its channel prefix ``area_id``.

    ``pubsub_thread`` is accepted for compatibility: every client of the process shares one
    connection and one reader anyway (``gsy_e_sdk.redis_connection``).
    """

    def __init__(self, area_id: str, autoregister: bool = True, redis_url: str | None = None,
                 pubsub_thread: Any = None) -> None:
        self.area_id = validation.area_uuid(area_id, "area_id")
        self.area_uuid: str | None = None
        self.device_uuid = None  # legacy attribute, always None
        self.is_active = False
        self.channel_names = AreaChannelNames.for_prefix(area_id)
        self._connection = get_connection(redis_url)
        self.redis_db = self._connection.redis
        self.pubsub = self._connection.pubsub
        self._hooks = HookRunner()
        self.executor = self._hooks.executor
        self._channel_handlers = {
            self.channel_names.register_response: self._on_register_response,
            self.channel_names.unregister_response: self._on_unregister_response,
        }
        # The catch-all pattern only feeds on_event_or_response: skip it when nobody listens,
        # since Redis matches every pattern against every published message.
        self._pattern_handlers = (
            {self.channel_names.all_messages: self._on_area_message}
            if type(self).on_event_or_response is not RedisClientBase.on_event_or_response else {})
        self._connection.subscribe(self._channel_handlers, self._pattern_handlers)
        self._connection.watch_aggregator_responses()
        if autoregister:
            self.register(is_blocking=True)

    # Hooks ------------------------------------------------------------------------------------

    def on_register(self, registration_info: dict[str, Any]) -> None:
        """Called after a successful registration with the exchange's response."""

    def on_event_or_response(self, message: dict[str, Any]) -> None:
        """Called with every message on ``<area_id>/*``."""

    def wait_for_hooks(self, timeout: float | None = None) -> bool:
        """Block until every hook submitted so far has returned."""
        return self._hooks.wait_idle(timeout)

    # Registration -----------------------------------------------------------------------------

    def register(self, is_blocking: bool = True) -> None:
        if self.is_active:
            raise RedisAPIException("API is already registered to the market.")
        response = self._request(
            self.channel_names.register, "register", is_blocking,
            "API registration process timed out. Server will continue processing your request "
            "on the background and will notify you as soon as the registration has been "
            "completed.")
        if is_blocking and not self.is_active:
            raise RedisAPIException(f"Registration of {self.area_id} failed: {response}")

    def unregister(self, is_blocking: bool = True) -> None:
        if not self.is_active:
            raise RedisAPIException("API is already unregistered from the market.")
        response = self._request(
            self.channel_names.unregister, "unregister", is_blocking,
            "API unregister process timed out. Server will continue processing your request on "
            "the background and will notify you as soon as the unregistration has been "
            "completed.")
        if is_blocking and not _unregistered(response):
            raise RedisAPIException(f"Failed to unregister from market {self.area_id}. "
                                    f"Deactivating connection. (response: {response})")

    def _request(self, channel: str, command: str, is_blocking: bool, timeout_text: str) -> Any:
        transaction_id = new_transaction_id()
        future = self._connection.pending.expect(transaction_id, owner=self)
        self._connection.publish(channel, {"name": self.area_id, "transaction_id": transaction_id})
        if not is_blocking:
            return None
        return self._connection.pending.wait(transaction_id, future, REGISTER_TIMEOUT,
                                             RedisAPIException, timeout_text, command)

    def _on_register_response(self, _channel: str, payload: dict[str, Any]) -> None:
        transaction_id = payload.get("transaction_id")
        if not self._connection.pending.owned_by(transaction_id, self):
            logger.debug("Ignoring a register response for %s not requested here: %s",
                         self.area_id, payload)
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
            logger.error("Failed to unregister from market %s. Deactivating connection. (%s)",
                         self.area_id, payload)
        self.is_active = False
        self._connection.pending.resolve(transaction_id, payload)

    # Aggregator selection ---------------------------------------------------------------------

    def select_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Hand control of this area to an aggregator; the transaction id when blocking."""
        if self.area_uuid is None:
            raise RedisAPIException(
                "The device/market has not ben registered yet, can not select an aggregator")
        return self._aggregator_command("SELECT", aggregator_uuid, is_blocking)

    def unselect_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Take control back from an aggregator; the transaction id when blocking."""
        if self.area_uuid is None:
            raise RedisAPIException(
                "The device/market has not ben registered yet, can not unselect an aggregator")
        return self._aggregator_command("UNSELECT", aggregator_uuid, is_blocking)

    def _aggregator_command(self, kind: str, aggregator_uuid: str, is_blocking: bool) -> str | None:
        validation.area_uuid(aggregator_uuid, "aggregator_uuid")
        transaction_id = new_transaction_id()
        pending = self._connection.pending
        future = pending.expect(transaction_id, owner=self)
        self._connection.publish(channels.AGGREGATOR_COMMANDS, {
            "aggregator_uuid": aggregator_uuid, "device_uuid": self.area_uuid, "type": kind,
            "transaction_id": transaction_id})
        if not is_blocking:
            return None
        response = pending.wait(transaction_id, future, AGGREGATOR_COMMAND_TIMEOUT,
                                RedisAPIException, "API has timed out.", kind)
        if response.get("status") == "error":
            logger.warning("%s of aggregator %s by %s was refused: %s", kind, aggregator_uuid,
                           self.area_id, response.get("msg", response))
        return transaction_id

    # Messages on <area_id>/* ------------------------------------------------------------------

    def _on_area_message(self, _channel: str, payload: dict[str, Any]) -> None:
        self._hooks.submit("on_event_or_response", self.on_event_or_response, payload)

    def close(self) -> None:
        """Stop receiving messages for this client (the shared connection stays open)."""
        self._connection.unsubscribe(self._channel_handlers, self._pattern_handlers)


def _unregistered(response: Any) -> bool:
    """gsy-e answers ``status: ready``, the original SDK wanted ``response: success``."""
    return isinstance(response, dict) and (
        response.get("response") == "success" or response.get("status") == "ready")
