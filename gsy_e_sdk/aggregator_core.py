"""What an aggregator does, whatever its transport (SDK_API.md 4.4, 5.3).

``AggregatorCore`` is the whole aggregator over a ``gsy_e_sdk.transports.base.BatchTransport``:
grid-tree caching, the area-name mapping, grid fees, the selected-device list, the command buffer
and its batches, and the hooks. ``RedisAggregator`` and ``Aggregator`` (REST) bind it to their
transports; the in-memory transport runs it in the unit tests.

Bookkeeping runs on the transport's reader thread *before* a hook is queued, so a hook always
sees state at least as new as its event; hooks run in arrival order on the shared executor (a
tick superseded while the hooks are behind is skipped, see ``gsy_e_sdk.hooks``).

Events and batch answers are validated here, at the boundary: one that does not have the
protocol's shape (REDIS.md 6.4, 7) is logged (rate-limited) and dropped before any state or hook
sees it, so garbage on a channel cannot corrupt the aggregator or reach user code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.commands import ClientCommandBuffer, Command
from gsy_e_sdk.constants import MIN_SLOT_COMPLETION_TICK_TRIGGER_PERCENTAGE
from gsy_e_sdk.grid_fee_calculation import GridFeeCalculation
from gsy_e_sdk.hooks import Call, EventHooks
from gsy_e_sdk.transports.base import BatchTransport, NotSent
from gsy_e_sdk.utils import (
    create_area_name_uuid_mapping_from_tree_info,
    flatten_info_dict,
    get_uuid_from_area_name_in_tree_dict,
    log_bid_offer_confirmation,
    log_trade_info,
)
from gsy_e_sdk.wire.incoming import AggregatorEvent, BatchEnvelope, check
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.times import parse_completion

logger = logging.getLogger(__name__)
_dropped = RateLimitedLog(logger)


class AggregatorCommandBuffer(ClientCommandBuffer):
    """The batch buffer, able to take back a batch whose sending failed."""

    def restore(self, batch: dict[str, list[Command]]) -> None:
        """Put ``batch`` back in front of whatever was added meanwhile (order per uuid kept)."""
        taken = [(uuid, command) for uuid, commands in batch.items() for command in commands]
        self._commands[:0] = taken


class AggregatorCore(EventHooks):
    """An aggregator bound to ``transport``, created at the exchange (or, with
    ``aggregator_uuid``, taking over one that exists, which ``device_uuids`` already selected).
    ``drop_stale_ticks=False`` runs ``on_tick`` for every tick even when the hooks are behind
    (default: the class attribute, True; see ``gsy_e_sdk.hooks``)."""

    aggregator_name: str
    aggregator_uuid: str
    _transport: BatchTransport

    def __init__(
        self,
        transport: BatchTransport,
        aggregator_name: str,
        accept_all_devices: bool = True,
        *,
        aggregator_uuid: str | None = None,
        device_uuids: Iterable[str] | None = None,
        drop_stale_ticks: bool | None = None,
    ) -> None:
        if drop_stale_ticks is not None:
            self.drop_stale_ticks = drop_stale_ticks
        self.aggregator_name = aggregator_name
        self.accept_all_devices = accept_all_devices
        self.device_uuid_list: list[str] = list(dict.fromkeys(device_uuids or ()))
        self.is_finished = False
        self.latest_grid_tree: dict[str, Any] = {}
        self.latest_grid_tree_flat: dict[str, dict[str, Any]] = {}
        self.area_name_uuid_mapping: dict[str, list[str]] = {}
        self.grid_fee_calculation = GridFeeCalculation()
        self.lock = threading.Lock()  # for scripts; the SDK does not take it
        self._buffer = AggregatorCommandBuffer()
        self._devices_lock = threading.Lock()  # the reader thread and callers both update the list
        self._start_hooks(aggregator_name)
        self._transport = transport
        self.aggregator_uuid = aggregator_uuid or ""  # until the exchange confirmed it
        transport.open(self)
        self.aggregator_uuid = transport.attach(aggregator_name, aggregator_uuid)

    def close(self) -> None:
        """Stop receiving messages for this aggregator (what the process shares stays open)."""
        self._transport.close()

    # Batch buffer -------------------------------------------------------------------------------

    @property
    def add_to_batch_commands(self) -> ClientCommandBuffer:
        return self._buffer

    @property
    def commands_buffer_length(self) -> int:
        return self._buffer.buffer_length

    def execute_batch_commands(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Send the buffered commands as one batch; the answer envelope when blocking.

        The buffer is emptied first, and a uuid this aggregator does not control raises at once
        (the exchange would drop its commands silently and never answer). None for an empty
        buffer, after ``finish``, when not blocking, or when the exchange did not take the batch
        - then its commands go back into the buffer for the next call. A missing answer raises
        the transport's timeout error.
        """
        batch = self._batch_to_send()
        if batch is None:
            return None
        try:
            return self._transport.send_batch(batch, wait=is_blocking)
        except NotSent:
            self._buffer.restore(batch)
            return None

    # Spelling used in the original README.
    execute_batch_command = execute_batch_commands

    def _batch_to_send(self) -> dict[str, list[Command]] | None:
        """Empty the buffer into a batch; None when it is empty or the simulation finished."""
        if not self._buffer.buffer_length:
            return None
        batch = self._buffer.take_batch()
        selected = set(self.device_uuid_list)
        for uuid in batch:
            if uuid not in selected:
                raise Exception(f"{uuid} not in list of selected device uuids")
        if self.is_finished:
            logger.warning(
                "%s: simulation finished, batch of %d commands not sent",
                self.aggregator_name,
                sum(map(len, batch.values())),
            )
            return None
        return batch

    # Grid tree helpers --------------------------------------------------------------------------

    def get_uuid_from_area_name(self, name: str) -> str | None:  # the REST aggregator: None before a market
        return get_uuid_from_area_name_in_tree_dict(self.area_name_uuid_mapping, name)

    def calculate_grid_fee(
        self,
        start_market_or_device_name: str,
        target_market_or_device_name: str | None = None,
        fee_type: str = "current_market_fee",
    ) -> float | None:
        """Grid fee between two areas given by uuid or by (unique) name."""
        start = self._area_uuid(start_market_or_device_name)
        target = None if target_market_or_device_name is None else self._area_uuid(target_market_or_device_name)
        return self.grid_fee_calculation.calculate_grid_fee(start, target, fee_type)

    def _area_uuid(self, name_or_uuid: str) -> str:
        validation.area_uuid(name_or_uuid, "area name or uuid")
        if name_or_uuid in self.grid_fee_calculation.paths_to_root_mapping or not self.area_name_uuid_mapping:
            return name_or_uuid
        return get_uuid_from_area_name_in_tree_dict(self.area_name_uuid_mapping, name_or_uuid)

    # What the transport delivers (its reader thread) --------------------------------------------

    def _on_selection(self, device_uuid: Any, selected: bool) -> None:
        with self._devices_lock:
            if not selected:
                if device_uuid in self.device_uuid_list:
                    self.device_uuid_list.remove(device_uuid)
            elif self.accept_all_devices and isinstance(device_uuid, str) and device_uuid not in self.device_uuid_list:
                self.device_uuid_list.append(device_uuid)

    def _on_answer(self, command: str, answer: dict[str, Any]) -> None:
        """An aggregator keeps nothing of the answers to its other commands."""

    def _on_event(self, message: dict[str, Any]) -> None:
        """A ``market``/``tick``/``trade``/``finish`` event (REDIS.md 7): bookkeeping, then hooks."""
        if not check(AggregatorEvent, message, _dropped, f"the events of {self.aggregator_name}"):
            return
        event = message["event"]
        if event in ("market", "tick", "trade") and message.get("grid_tree") is not None:
            flat = flatten_info_dict(message["grid_tree"])
            self.latest_grid_tree, self.latest_grid_tree_flat = message["grid_tree"], flat
        calls: list[Call] = []
        if event == "market":
            self.area_name_uuid_mapping = create_area_name_uuid_mapping_from_tree_info(self.latest_grid_tree_flat)
            self.grid_fee_calculation.handle_grid_stats(self.latest_grid_tree)
            calls.append(("on_market_slot", self.on_market_slot, (message,)))
        elif event == "tick":
            if parse_completion(message.get("slot_completion")) >= MIN_SLOT_COMPLETION_TICK_TRIGGER_PERCENTAGE:
                calls.append(("on_tick", self.on_tick, (message,)))
        elif event == "trade":
            for trade in message.get("trade_list") or []:
                log_trade_info(trade)
            calls.append(("on_trade", self.on_trade, (message,)))
        elif event == "finish":
            self.is_finished = True
            self._transport.finished()
            calls.append(("on_finish", self.on_finish, (message,)))
            on_finished = getattr(self, "on_finished", None)  # the README's spelling
            if callable(on_finished):
                calls.append(("on_finished", on_finished, (message,)))
        else:
            _dropped.warning("%s: unknown event %r", self.aggregator_name, event)
        calls.append(("on_event_or_response", self.on_event_or_response, (message,)))
        self._hooks.submit_event(event, calls)
        if event == "finish" and self.dropped_ticks:
            logger.info(
                "%s: %d tick events were skipped because a newer event arrived before their hooks started.",
                self.aggregator_name,
                self.dropped_ticks,
            )

    def _on_batch_answer(self, envelope: dict[str, Any]) -> bool:
        """A batch's answer envelope (REDIS.md 6.4): errors logged, then ``on_event_or_response``."""
        if not check(BatchEnvelope, envelope, _dropped, f"the batch answers of {self.aggregator_name}"):
            return False
        for uuid, responses in envelope.get("responses", {}).items():
            for response in responses:
                if response.get("status") == "error":
                    logger.warning(
                        "%s: %s on %s failed: %s",
                        self.aggregator_name,
                        response.get("command"),
                        uuid,
                        response.get("error_message") or response.get("message"),
                    )
                else:
                    log_bid_offer_confirmation(response)
        self._hooks.submit("on_event_or_response", self.on_event_or_response, envelope)
        return True
