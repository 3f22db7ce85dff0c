"""``RedisAggregator``: controls selected assets/markets through batch commands (SDK_API.md 4.4).

The event and batch-response bookkeeping, hooks and grid-tree helpers are shared with the REST
``Aggregator`` (``gsy_e_sdk.aggregator_core``); this module adds the Redis transport: CREATE,
DELETE and batches on pub/sub channels, answers matched by transaction id on the shared reader
thread.
"""

from __future__ import annotations

import logging
from typing import Any

from gsy_e_sdk.aggregator_core import AggregatorCore
from gsy_e_sdk.batch import submit_batch
from gsy_e_sdk.constants import AGGREGATOR_COMMAND_TIMEOUT, BATCH_COMMAND_TIMEOUT
from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.pending import new_transaction_id
from gsy_e_sdk.wire.redis_connection import get_connection

logger = logging.getLogger(__name__)


class RedisAggregatorAPIException(Exception):
    pass


class AggregatorChannelNames:
    def __init__(self, aggregator_uuid: str) -> None:
        self.commands = channels.AGGREGATOR_COMMANDS
        self.responses = channels.AGGREGATOR_RESPONSE
        self.batch_commands = channels.batch_commands()
        self.batch_commands_response = channels.batch_response(aggregator_uuid)
        self.events = channels.aggregator_events(aggregator_uuid)


class RedisAggregator(AggregatorCore):
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
        self._init_aggregator_state(aggregator_name, accept_all_devices, drop_stale_ticks)
        # The exchange names the aggregator after the CREATE transaction id (REDIS.md 4.1).
        self.aggregator_uuid = aggregator_uuid or new_transaction_id()
        self.device_uuid_list.extend(dict.fromkeys(device_uuids or ()))
        self.channel_names = AggregatorChannelNames(self.aggregator_uuid)
        self._batches_in_flight: set[str] = set()
        self._connection = get_connection(redis_url)
        self.redis_db = self._connection.redis
        self.pubsub = self._connection.pubsub
        self.executor = self._hooks.executor
        self._channel_handlers = {
            self.channel_names.events: self._on_event,
            self.channel_names.batch_commands_response: self._on_batch_response,
        }
        self._connection.subscribe(self._channel_handlers)
        self._connection.watch_aggregator_responses(self.aggregator_uuid, self._on_selection)
        if aggregator_uuid is None:
            self._create()

    def _create(self) -> None:
        # CREATE is sent again while nobody listens: a script started together with the exchange
        # would otherwise publish it before the exchange subscribed, and wait forever.
        response = self._connection.request(
            self.channel_names.commands,
            {"name": self.aggregator_name, "type": "CREATE", "transaction_id": self.aggregator_uuid},
            owner=self,
            wait=True,
            timeout=AGGREGATOR_COMMAND_TIMEOUT,
            error=RedisAggregatorAPIException,
            message="API registration process timed out.",
            command="CREATE",
        )
        if response.get("status") == "error":
            raise RedisAggregatorAPIException(
                f"The exchange refused to create aggregator {self.aggregator_name}: {response}"
            )

    # Batch commands ---------------------------------------------------------------------------

    def execute_batch_commands(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Send the buffered commands as one batch; the response envelope when blocking.

        The buffer is emptied first. A uuid this aggregator does not control raises at once,
        since the exchange would silently drop its commands and never answer.
        """
        batch = self._batch_to_send()
        if batch is None:
            return None
        transaction_id = new_transaction_id()
        self._batches_in_flight.add(transaction_id)
        try:
            return submit_batch(
                self._connection,
                self.aggregator_uuid,
                batch,
                transaction_id,
                BATCH_COMMAND_TIMEOUT,
                wait=is_blocking,
                owner=self,
                listen=False,
                error=RedisAggregatorAPIException,
            )
        finally:
            if is_blocking:
                self._batches_in_flight.discard(transaction_id)

    # Spelling used in the original README.
    execute_batch_command = execute_batch_commands

    def delete_aggregator(self, is_blocking: bool = True) -> str | None:
        """Delete this aggregator at the exchange (on ``aggregator-commands``, where it listens)."""
        transaction_id = new_transaction_id()
        command = {
            "name": self.aggregator_name,
            "aggregator_uuid": self.aggregator_uuid,
            "type": "DELETE",
            "transaction_id": transaction_id,
        }
        if self.is_finished:
            # As the original: after finish nothing is waited for (the exchange may have exited).
            self._connection.publish(self.channel_names.commands, command)
            return transaction_id if is_blocking else None
        response = self._connection.request(
            self.channel_names.commands,
            command,
            owner=self,
            wait=is_blocking,
            timeout=AGGREGATOR_COMMAND_TIMEOUT,
            error=RedisAggregatorAPIException,
            message="API has timed out.",
            command="DELETE",
        )
        if not is_blocking:
            return None
        if response.get("status") == "error":
            logger.warning("The exchange could not delete aggregator %s: %s", self.aggregator_uuid, response)
        return transaction_id

    def close(self) -> None:
        """Stop receiving messages for this aggregator (the shared connection stays open)."""
        self._connection.unsubscribe(self._channel_handlers)
        self._connection.forget_aggregator(self.aggregator_uuid)

    # Messages (reader thread) -----------------------------------------------------------------

    def _on_selection(self, payload: dict[str, Any]) -> None:
        """SELECTED/UNSELECTED for this aggregator only (the original adopted every device)."""
        status = payload.get("status")
        if status == "SELECTED":
            self._device_selected(payload.get("device_uuid"))
        elif status == "UNSELECTED":
            self._device_unselected(payload.get("device_uuid"))

    def _on_event(self, _channel: str, message: dict[str, Any]) -> None:
        self._on_aggregator_event(message)

    def _on_batch_response(self, _channel: str, message: dict[str, Any]) -> None:
        if message.get("aggregator_uuid") != self.aggregator_uuid:
            return
        self._on_batch_envelope(message)

    def _resolve_batch(self, transaction_id: Any, envelope: dict[str, Any]) -> None:
        self._connection.pending.resolve(transaction_id, envelope)
        self._batches_in_flight.discard(transaction_id)

    def _release_waiting_batches(self) -> None:
        for transaction_id in list(self._batches_in_flight):
            self._connection.pending.resolve(transaction_id, None)
        self._batches_in_flight.clear()
