"""``Aggregator``: controls selected assets/markets of the hosted exchange (SDK_API.md 5.3).

The event bookkeeping and hooks are those of ``RedisAggregator`` (``gsy_e_sdk.aggregator_core``);
this module adds the REST transport: aggregator management and batches over HTTP, events and
batch answers over the aggregator's websocket ``{ws}/{sim}/aggregator/{uuid}/``.
"""

from __future__ import annotations

import logging
from typing import Any

from gsy_e_sdk.aggregator_core import AggregatorCore, register_local_aggregator
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.constants import REST_COMMAND_TIMEOUT
from gsy_e_sdk.websocket_device import CommandResponseTimeout, WebsocketMessageReceiver
from gsy_e_sdk.wire import rest_paths as paths
from gsy_e_sdk.wire.pending import new_transaction_id

logger = logging.getLogger(__name__)

BATCH_COMMAND = "batch_commands"


class AggregatorAPIException(Exception):
    """The exchange could not list or create the aggregator."""


class AggregatorWebsocketMessageReceiver(WebsocketMessageReceiver):
    """Messages of the aggregator socket: events, selections and batch answers (REST.md 4.3)."""

    def _on_event(self, message: dict[str, Any]) -> None:
        aggregator = self.client
        event = message.get("event")
        if event == "selected_by_device":
            aggregator._device_selected(message.get("device_uuid"))
            self._notify(message)
        elif event == "unselected_by_device":
            aggregator._device_unselected(message.get("device_uuid"))
            self._notify(message)
        else:
            aggregator._on_aggregator_event(message)

    def _on_command_response(self, message: dict[str, Any]) -> None:
        if message.get("command") != BATCH_COMMAND:
            super()._on_command_response(message)
            return
        owner = message.get("aggregator_uuid")
        if owner is not None and owner != self.client.aggregator_uuid:
            logger.debug("Ignoring a batch answer for aggregator %s.", owner)
            return
        self.client._on_batch_envelope(message)


class Aggregator(AggregatorCore, RestAssetClient):
    """An aggregator of the hosted exchange, found by name or created at construction.

    Its websocket opens at construction and stays open (reconnecting as needed): it carries
    the events of every selected asset and market, so those need no socket of their own.
    """

    def __init__(
        self,
        aggregator_name: str,
        simulation_id: str | None = None,
        domain_name: str | None = None,
        websockets_domain_name: str | None = None,
        accept_all_devices: bool = True,
        *,
        drop_stale_ticks: bool | None = None,
    ) -> None:
        """``drop_stale_ticks`` as for ``RedisAggregator`` (see ``gsy_e_sdk.hooks``)."""
        self._init_aggregator_state(aggregator_name, accept_all_devices, drop_stale_ticks)
        self.aggregator_uuid = ""
        RestAssetClient.__init__(
            self, "", simulation_id, domain_name, websockets_domain_name, autoregister=False, start_websocket=False
        )
        self.aggregator_uuid = self._find_or_create()
        register_local_aggregator(self)
        self._ensure_websocket()

    def __repr__(self) -> str:
        return f"Aggregator({self.aggregator_name!r}, {self.aggregator_uuid})"

    def _new_dispatcher(self) -> WebsocketMessageReceiver:
        return AggregatorWebsocketMessageReceiver(self)

    def _websocket_url(self) -> str:
        return paths.url(
            self.websockets_domain_name, paths.WEBSOCKET_AGGREGATOR, sim=self.simulation_id, agg=self.aggregator_uuid
        )

    # Aggregator management ----------------------------------------------------------------------

    def list_aggregators(self) -> list[dict[str, Any]]:
        """This user's aggregators in this simulation (``[]`` when the call fails)."""
        response = self._request("GET", self.aggregator_prefix + paths.LIST_AGGREGATORS)
        return response if isinstance(response, list) else []

    def _find_or_create(self) -> str:
        """Reuse the (last listed) aggregator of this name, else create one (REST.md 3.3)."""
        named = [
            entry
            for entry in self.list_aggregators()
            if isinstance(entry, dict) and entry.get("name") == self.aggregator_name
        ]
        if named and named[-1].get("uuid"):
            logger.info("Reusing aggregator %r (%s).", self.aggregator_name, named[-1]["uuid"])
            return named[-1]["uuid"]
        response = self._request(
            "POST", self.aggregator_prefix + paths.CREATE_AGGREGATOR, {"name": self.aggregator_name}
        )
        if not isinstance(response, dict) or not response.get("uuid"):
            raise AggregatorAPIException(
                f"Could not create aggregator {self.aggregator_name!r} "
                f"at {self.aggregator_prefix} (answer: {response!r})"
            )
        return response["uuid"]

    def delete_aggregator(self, is_blocking: bool = True) -> Any:
        """Delete this aggregator at the exchange; the HTTP answer (``is_blocking`` as for Redis
        scripts: the call always waits for it)."""
        return self._request(
            "POST", f"{self.aggregator_prefix}delete-aggregator/", {"aggregator_uuid": self.aggregator_uuid}
        )

    def get_configuration_registry(self) -> Any:
        """The grid with registration status (REST.md 3.4)."""
        return self._request("GET", self.configuration_prefix + paths.REGISTRY)

    # Batch commands -----------------------------------------------------------------------------

    def execute_batch_commands(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Send the buffered commands as one batch; the websocket answer when blocking.

        None for an empty buffer, after ``finish``, when the socket dropped before the answer
        came, or when the POST failed - then the commands go back into the buffer for the next
        call. A uuid this aggregator does not control
        raises (and the buffer is emptied, as with Redis).
        """
        batch = self._batch_to_send()
        if batch is None:
            return None
        if is_blocking:
            self._ensure_websocket()  # the answer comes over it: wait while it reconnects
        transaction_id = new_transaction_id()
        if is_blocking:
            self.dispatcher.expect(BATCH_COMMAND, transaction_id)
            if self.is_finished:  # finish arrived in between: nobody would answer
                self.dispatcher.discard(BATCH_COMMAND, transaction_id)
                return None
        ack = self._request(
            "POST",
            self.aggregator_prefix + paths.BATCH_COMMANDS,
            {"aggregator_uuid": self.aggregator_uuid, "batch_commands": batch, "transaction_id": transaction_id},
        )
        if not ack:
            self.dispatcher.discard(BATCH_COMMAND, transaction_id)
            self._buffer.restore(batch)
            return None
        if not is_blocking:
            return None
        try:
            return self.dispatcher.wait_for_command_response(BATCH_COMMAND, transaction_id, REST_COMMAND_TIMEOUT)
        except CommandResponseTimeout as exc:
            raise CommandResponseTimeout(f"Sending batch commands timed out. ({exc})") from None

    # Spelling used in the original README.
    execute_batch_command = execute_batch_commands

    # Grid tree ----------------------------------------------------------------------------------

    def get_uuid_from_area_name(self, name: str) -> str | None:
        """As ``RedisAggregator``, but None before the first ``market`` event."""
        if not self.area_name_uuid_mapping:
            return None
        return super().get_uuid_from_area_name(name)

    # Transport hooks of the core ----------------------------------------------------------------

    def _resolve_batch(self, transaction_id: Any, envelope: dict[str, Any]) -> None:
        self.dispatcher.resolve(BATCH_COMMAND, transaction_id, envelope)

    def _release_waiting_batches(self) -> None:
        self.dispatcher.release(BATCH_COMMAND, None)
