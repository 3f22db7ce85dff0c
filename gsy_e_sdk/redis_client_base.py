"""Registration and aggregator selection for one asset or market over Redis (SDK_API.md 4.1).

The client's logic is ``gsy_e_sdk.clients.area_client.AreaClient``, shared with the REST
clients; ``RedisClientBase`` binds it to the Redis transport and keeps the original's stricter
conventions: registering twice or unregistering an unregistered client raises, a failed blocking
registration raises, and selection returns the transaction id.
"""

from __future__ import annotations

from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.client_interface import APIClientInterface
from gsy_e_sdk.clients.area_client import AreaClient, unregistered
from gsy_e_sdk.constants import (
    AGGREGATOR_COMMAND_TIMEOUT,
    BATCH_COMMAND_TIMEOUT,
    DIRECT_COMMAND_TIMEOUT,
    REGISTER_TIMEOUT,
)
from gsy_e_sdk.transports.base import SELECT, UNSELECT, Timeouts
from gsy_e_sdk.transports.redis import AreaChannelNames, RedisAreaTransport

__all__ = ["AreaChannelNames", "RedisAPIException", "RedisClientBase"]


class RedisAPIException(Exception):
    pass


class RedisClientBase(AreaClient, APIClientInterface):
    """A registered asset or market, identified by its channel prefix ``area_id``.

    ``pubsub_thread`` is accepted for compatibility: every client of the process shares one
    connection and one reader anyway (``gsy_e_sdk.wire.redis_connection``).
    """

    def __init__(
        self, area_id: str, autoregister: bool = True, redis_url: str | None = None, pubsub_thread: Any = None
    ) -> None:
        self.area_id = validation.area_uuid(area_id, "area_id")
        self.device_uuid = None  # legacy attribute, always None
        # The original's waits, read here so that a test may shorten them.
        timeouts = Timeouts(REGISTER_TIMEOUT, AGGREGATOR_COMMAND_TIMEOUT, DIRECT_COMMAND_TIMEOUT, BATCH_COMMAND_TIMEOUT)
        transport = RedisAreaTransport(
            area_id,
            redis_url,
            error=RedisAPIException,
            timeouts=timeouts,
            # <area_id>/* only feeds on_event_or_response: not subscribed when nobody listens.
            observe=type(self).on_event_or_response is not RedisClientBase.on_event_or_response,
        )
        super().__init__(transport, area_id)
        self.channel_names = transport.channel_names
        self.redis_db = transport.connection.redis
        self.pubsub = transport.connection.pubsub
        if autoregister:
            self.register(is_blocking=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.area_id!r})"

    @property
    def is_active(self) -> bool:
        """Registered (the original's name)."""
        return self.registered

    def on_event_or_response(self, message: dict[str, Any]) -> None:
        """Called with every message on ``<area_id>/*``."""

    # Registration -----------------------------------------------------------------------------

    def register(self, is_blocking: bool = True) -> None:
        if self.is_active:
            raise RedisAPIException("API is already registered to the market.")
        response = super().register(is_blocking)
        if is_blocking and not self.is_active:
            raise RedisAPIException(f"Registration of {self.area_id} failed: {response}")

    def unregister(self, is_blocking: bool = True) -> None:
        if not self.is_active:
            raise RedisAPIException("API is already unregistered from the market.")
        response = super().unregister(is_blocking)
        if is_blocking and not unregistered(response):
            raise RedisAPIException(
                f"Failed to unregister from market {self.area_id}. Deactivating connection. (response: {response})"
            )

    # Aggregator selection ---------------------------------------------------------------------

    def select_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Hand control of this area to an aggregator; the transaction id when blocking."""
        return self._selection(SELECT, "select", aggregator_uuid, is_blocking)

    def unselect_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Take control back from an aggregator; the transaction id when blocking."""
        return self._selection(UNSELECT, "unselect", aggregator_uuid, is_blocking)

    def _selection(self, command: str, verb: str, aggregator_uuid: str, is_blocking: bool) -> str | None:
        if self.area_uuid is None:
            raise RedisAPIException(f"The device/market has not ben registered yet, can not {verb} an aggregator")
        transaction_id = self._select(command, aggregator_uuid, is_blocking)
        return transaction_id if is_blocking else None
