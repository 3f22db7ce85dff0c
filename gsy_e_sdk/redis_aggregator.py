"""``RedisAggregator``: controls selected assets/markets through batch commands (SDK_API.md 4.4).

Bookkeeping (grid tree, device list, pending responses) happens on the shared reader thread
before a hook is queued, so a hook always sees state at least as new as its event. Hooks run in
arrival order on the shared hook executor.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.batch import submit_batch
from gsy_e_sdk.commands import ClientCommandBuffer
from gsy_e_sdk.constants import (
    AGGREGATOR_COMMAND_TIMEOUT, BATCH_COMMAND_TIMEOUT, MIN_SLOT_COMPLETION_TICK_TRIGGER_PERCENTAGE)
from gsy_e_sdk.grid_fee_calculation import GridFeeCalculation
from gsy_e_sdk.hooks import HookRunner
from gsy_e_sdk.pending import new_transaction_id
from gsy_e_sdk.redis_connection import get_connection
from gsy_e_sdk.utils import (
    create_area_name_uuid_mapping_from_tree_info, flatten_info_dict, get_uuid_from_area_name_in_tree_dict,
    log_bid_offer_confirmation, log_trade_info)
from gsy_e_sdk.wire import channels

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


class RedisAggregator:
    def __init__(self, aggregator_name: str, accept_all_devices: bool = True,
                 redis_url: str | None = None) -> None:
        self.aggregator_name = aggregator_name
        self.accept_all_devices = accept_all_devices
        # The exchange names the aggregator after the CREATE transaction id (REDIS.md 4.1).
        self.aggregator_uuid = new_transaction_id()
        self.device_uuid_list: list[str] = []
        self.is_finished = False
        self.latest_grid_tree: dict[str, Any] = {}
        self.latest_grid_tree_flat: dict[str, dict[str, Any]] = {}
        self.area_name_uuid_mapping: dict[str, list[str]] = {}
        self.grid_fee_calculation = GridFeeCalculation()
        self.lock = threading.Lock()  # for scripts; the SDK does not take it
        self.channel_names = AggregatorChannelNames(self.aggregator_uuid)
        self._buffer = ClientCommandBuffer()
        self._batches_in_flight: set[str] = set()
        self._connection = get_connection(redis_url)
        self.redis_db = self._connection.redis
        self.pubsub = self._connection.pubsub
        self._hooks = HookRunner()
        self.executor = self._hooks.executor
        self._channel_handlers = {
            self.channel_names.events: self._on_event,
            self.channel_names.batch_commands_response: self._on_batch_response,
        }
        self._connection.subscribe(self._channel_handlers)
        self._connection.watch_aggregator_responses(self.aggregator_uuid, self._on_selection)
        self._create()

    def _create(self) -> None:
        pending = self._connection.pending
        future = pending.expect(self.aggregator_uuid, owner=self)
        self._connection.publish(self.channel_names.commands, {
            "name": self.aggregator_name, "type": "CREATE", "transaction_id": self.aggregator_uuid})
        response = pending.wait(self.aggregator_uuid, future, AGGREGATOR_COMMAND_TIMEOUT,
                                RedisAggregatorAPIException, "API registration process timed out.",
                                "CREATE")
        if response.get("status") == "error":
            raise RedisAggregatorAPIException(f"The exchange refused to create aggregator "
                                              f"{self.aggregator_name}: {response}")

    # Hooks (override in a subclass) -----------------------------------------------------------

    def on_market_slot(self, market_info: dict[str, Any]) -> None:
        self.on_market_cycle(market_info)

    def on_market_cycle(self, market_info: dict[str, Any]) -> None:
        """Deprecated name of ``on_market_slot``, still called by its default."""

    def on_tick(self, tick_info: dict[str, Any]) -> None:
        pass

    def on_trade(self, trade_info: dict[str, Any]) -> None:
        pass

    def on_finish(self, finish_info: dict[str, Any]) -> None:
        pass

    def on_event_or_response(self, message: dict[str, Any]) -> None:
        pass

    def wait_for_hooks(self, timeout: float | None = None) -> bool:
        """Block until every hook submitted so far has returned."""
        return self._hooks.wait_idle(timeout)

    # Batch commands ---------------------------------------------------------------------------

    @property
    def add_to_batch_commands(self) -> ClientCommandBuffer:
        return self._buffer

    @property
    def commands_buffer_length(self) -> int:
        return self._buffer.buffer_length

    def execute_batch_commands(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Send the buffered commands as one batch; the response envelope when blocking.

        The buffer is emptied first. A uuid this aggregator does not control raises at once,
        since the exchange would silently drop its commands and never answer.
        """
        if not self._buffer.buffer_length:
            return None
        batch = self._buffer.take_batch()
        selected = set(self.device_uuid_list)
        for uuid in batch:
            if uuid not in selected:
                raise Exception(f"{uuid} not in list of selected device uuids")  # noqa: TRY002
        if self.is_finished:
            logger.warning("%s: simulation finished, batch of %d commands not sent",
                           self.aggregator_name, sum(map(len, batch.values())))
            return None
        transaction_id = new_transaction_id()
        self._batches_in_flight.add(transaction_id)
        try:
            return submit_batch(self._connection, self.aggregator_uuid, batch, transaction_id,
                                BATCH_COMMAND_TIMEOUT, wait=is_blocking, owner=self, listen=False,
                                error=RedisAggregatorAPIException)
        finally:
            if is_blocking:
                self._batches_in_flight.discard(transaction_id)

    # Spelling used in the original README.
    execute_batch_command = execute_batch_commands

    def delete_aggregator(self, is_blocking: bool = True) -> str | None:
        """Delete this aggregator at the exchange (on ``aggregator-commands``, where it listens)."""
        transaction_id = new_transaction_id()
        pending = self._connection.pending
        future = pending.expect(transaction_id, owner=self)
        self._connection.publish(self.channel_names.commands, {
            "name": self.aggregator_name, "aggregator_uuid": self.aggregator_uuid,
            "type": "DELETE", "transaction_id": transaction_id})
        if not is_blocking:
            return None
        response = pending.wait(transaction_id, future, AGGREGATOR_COMMAND_TIMEOUT,
                                RedisAggregatorAPIException, "API has timed out.", "DELETE")
        if response.get("status") == "error":
            logger.warning("The exchange could not delete aggregator %s: %s",
                           self.aggregator_uuid, response)
        return transaction_id

    def close(self) -> None:
        """Stop receiving messages for this aggregator (the shared connection stays open)."""
        self._connection.unsubscribe(self._channel_handlers)
        self._connection.forget_aggregator(self.aggregator_uuid)

    # Grid tree helpers ------------------------------------------------------------------------

    def get_uuid_from_area_name(self, name: str) -> str:
        return get_uuid_from_area_name_in_tree_dict(self.area_name_uuid_mapping, name)

    def calculate_grid_fee(self, start_market_or_device_name: str,
                           target_market_or_device_name: str | None = None,
                           fee_type: str = "current_market_fee") -> float | None:
        """Grid fee between two areas given by uuid or by (unique) name."""
        start = self._area_uuid(start_market_or_device_name)
        target = (None if target_market_or_device_name is None
                  else self._area_uuid(target_market_or_device_name))
        return self.grid_fee_calculation.calculate_grid_fee(start, target, fee_type)

    def _area_uuid(self, name_or_uuid: str) -> str:
        validation.area_uuid(name_or_uuid, "area name or uuid")
        if (name_or_uuid in self.grid_fee_calculation.paths_to_root_mapping
                or not self.area_name_uuid_mapping):
            return name_or_uuid
        return self.get_uuid_from_area_name(name_or_uuid)

    # Messages (reader thread) -----------------------------------------------------------------

    def _on_selection(self, payload: dict[str, Any]) -> None:
        """SELECTED/UNSELECTED for this aggregator only (the original adopted every device)."""
        device_uuid = payload.get("device_uuid")
        status = payload.get("status")
        if status == "SELECTED" and self.accept_all_devices and device_uuid not in self.device_uuid_list:
            self.device_uuid_list.append(device_uuid)
        elif status == "UNSELECTED" and device_uuid in self.device_uuid_list:
            self.device_uuid_list.remove(device_uuid)

    def _on_event(self, _channel: str, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event in ("market", "tick", "trade") and isinstance(message.get("grid_tree"), dict):
            self.latest_grid_tree = message["grid_tree"]
            self.latest_grid_tree_flat = flatten_info_dict(self.latest_grid_tree)
        if event == "market":
            self.area_name_uuid_mapping = create_area_name_uuid_mapping_from_tree_info(
                self.latest_grid_tree_flat)
            self.grid_fee_calculation.handle_grid_stats(self.latest_grid_tree)
            self._hooks.submit("on_market_slot", self.on_market_slot, message)
        elif event == "tick":
            if _completion_percent(message) >= MIN_SLOT_COMPLETION_TICK_TRIGGER_PERCENTAGE:
                self._hooks.submit("on_tick", self.on_tick, message)
        elif event == "trade":
            for trade in message.get("trade_list") or []:
                log_trade_info(trade)
            self._hooks.submit("on_trade", self.on_trade, message)
        elif event == "finish":
            self.is_finished = True
            self._release_waiting_batches()
            self._hooks.submit("on_finish", self.on_finish, message)
            on_finished = getattr(self, "on_finished", None)  # the README's spelling
            if callable(on_finished):
                self._hooks.submit("on_finished", on_finished, message)
        else:
            logger.warning("%s: unknown event %r", self.aggregator_name, event)
        self._hooks.submit("on_event_or_response", self.on_event_or_response, message)

    def _on_batch_response(self, _channel: str, message: dict[str, Any]) -> None:
        if message.get("aggregator_uuid") != self.aggregator_uuid:
            return
        for uuid, responses in (message.get("responses") or {}).items():
            for response in responses or []:
                if not isinstance(response, dict):
                    continue
                if response.get("status") == "error":
                    logger.warning("%s: %s on %s failed: %s", self.aggregator_name,
                                   response.get("command"), uuid,
                                   response.get("error_message") or response.get("message"))
                else:
                    log_bid_offer_confirmation(response)
        self._connection.pending.resolve(message.get("transaction_id"), message)
        self._batches_in_flight.discard(message.get("transaction_id"))
        self._hooks.submit("on_event_or_response", self.on_event_or_response, message)

    def _release_waiting_batches(self) -> None:
        """After ``finish`` no answer will come: blocked batch calls return None at once."""
        for transaction_id in list(self._batches_in_flight):
            self._connection.pending.resolve(transaction_id, None)
        self._batches_in_flight.clear()


def _completion_percent(message: dict[str, Any]) -> float:
    """``slot_completion`` is a string such as ``"40%"``."""
    try:
        return float(str(message.get("slot_completion", "0")).rstrip("%"))
    except ValueError:
        return 0.0
