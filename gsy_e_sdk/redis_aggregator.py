"""``RedisAggregator``: controls selected assets/markets through batch commands (SDK_API.md 4.4).

The aggregator's logic is ``gsy_e_sdk.aggregator_core.AggregatorCore``, shared with the REST
``Aggregator``; this class binds it to the Redis transport (``gsy_e_sdk.transports.redis``).
"""

from __future__ import annotations

import logging

from gsy_e_sdk.aggregator_core import AggregatorCore
from gsy_e_sdk.constants import (
    AGGREGATOR_COMMAND_TIMEOUT,
    BATCH_COMMAND_TIMEOUT,
    DIRECT_COMMAND_TIMEOUT,
    REGISTER_TIMEOUT,
)
from gsy_e_sdk.transports.base import DELETE, Timeouts
from gsy_e_sdk.transports.redis import AggregatorChannelNames, RedisAggregatorTransport
from gsy_e_sdk.wire.pending import new_transaction_id

logger = logging.getLogger(__name__)

__all__ = ["AggregatorChannelNames", "RedisAggregator", "RedisAggregatorAPIException"]


class RedisAggregatorAPIException(Exception):
    pass


class RedisAggregator(AggregatorCore):
    _transport: RedisAggregatorTransport

    def __init__(
        self,
        aggregator_name: str,
        accept_all_devices: bool = True,
        redis_url: str | None = None,
        *,
        aggregator_uuid: str | None = None,
        device_uuids: list[str] | None = None,
        drop_stale_ticks: bool | None = None,
    ) -> None:
        """``aggregator_uuid`` takes over an aggregator that already exists at the exchange (e.g.
        after a restart) instead of creating one; ``device_uuids`` are the devices that already
        selected it (the SELECTED answers went out before this object listened).
        ``drop_stale_ticks=False`` runs ``on_tick`` for every tick even when the hooks are behind
        (default: the class attribute, True; see ``gsy_e_sdk.hooks``)."""
        # The original's waits, read here so that a test may shorten them.
        timeouts = Timeouts(REGISTER_TIMEOUT, AGGREGATOR_COMMAND_TIMEOUT, DIRECT_COMMAND_TIMEOUT, BATCH_COMMAND_TIMEOUT)
        transport = RedisAggregatorTransport(redis_url, error=RedisAggregatorAPIException, timeouts=timeouts)
        super().__init__(
            transport,
            aggregator_name,
            accept_all_devices,
            aggregator_uuid=aggregator_uuid,
            device_uuids=device_uuids,
            drop_stale_ticks=drop_stale_ticks,
        )
        self.channel_names = transport.channel_names
        self.redis_db = transport.connection.redis
        self.pubsub = transport.connection.pubsub

    def delete_aggregator(self, is_blocking: bool = True) -> str | None:
        """Delete this aggregator at the exchange (on ``aggregator-commands``, where it listens); the
        transaction id when blocking. After ``finish`` it is only published, never waited for."""
        transaction_id = new_transaction_id()
        payload = {
            "name": self.aggregator_name,
            "aggregator_uuid": self.aggregator_uuid,
            "transaction_id": transaction_id,
        }
        answer = self._transport.send(DELETE, payload, wait=is_blocking)
        if not is_blocking:
            return None
        if isinstance(answer, dict) and answer.get("status") == "error":
            logger.warning("The exchange could not delete aggregator %s: %s", self.aggregator_uuid, answer)
        return transaction_id
