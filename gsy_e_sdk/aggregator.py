"""``Aggregator``: controls selected assets/markets of the hosted exchange (SDK_API.md 5.3).

The aggregator's logic is ``gsy_e_sdk.aggregator_core.AggregatorCore``, shared with
``RedisAggregator``; this class binds it to the REST transport (``gsy_e_sdk.transports.rest``):
aggregator management and batches over HTTP, events and batch answers over the aggregator's
websocket ``{ws}/{sim}/aggregator/{uuid}/``. As in the original it is also a ``RestAssetClient``
(of an empty asset uuid: its asset methods are not meant to be used).
"""

from __future__ import annotations

from typing import Any

from gsy_e_sdk.aggregator_core import AggregatorCore
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.transports.base import DELETE
from gsy_e_sdk.transports.rest import RestAggregatorTransport, RestSettings
from gsy_e_sdk.websocket_device import AggregatorWebsocketMessageReceiver
from gsy_e_sdk.wire.pending import new_transaction_id

__all__ = ["Aggregator", "AggregatorAPIException", "AggregatorWebsocketMessageReceiver"]


class AggregatorAPIException(Exception):
    """The exchange could not list or create the aggregator."""


class Aggregator(AggregatorCore, RestAssetClient):
    """An aggregator of the hosted exchange, found by name or created at construction.

    Its websocket opens at construction and stays open (reconnecting as needed): it carries
    the events of every selected asset and market, so those need no socket of their own.
    """

    _transport: RestAggregatorTransport

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
        settings = RestSettings.resolve(simulation_id, domain_name, websockets_domain_name)
        self.asset_uuid = ""
        self._init_rest(settings)
        self._init_area("")
        transport = RestAggregatorTransport(settings, error=AggregatorAPIException)
        AggregatorCore.__init__(self, transport, aggregator_name, accept_all_devices, drop_stale_ticks=drop_stale_ticks)

    def __repr__(self) -> str:
        return f"Aggregator({self.aggregator_name!r}, {self.aggregator_uuid})"

    # Aggregator management ----------------------------------------------------------------------

    def list_aggregators(self) -> list[dict[str, Any]]:
        """This user's aggregators in this simulation (``[]`` when the call fails)."""
        return self._transport.list_aggregators()

    def delete_aggregator(self, is_blocking: bool = True) -> Any:
        """Delete this aggregator at the exchange; the HTTP answer (``is_blocking`` as for Redis
        scripts: the call always waits for it)."""
        payload = {"aggregator_uuid": self.aggregator_uuid, "transaction_id": new_transaction_id()}
        return self._transport.send(DELETE, payload, wait=True)

    def get_configuration_registry(self) -> Any:
        """The grid with registration status (REST.md 3.4)."""
        return self._transport.registry()

    # Grid tree ----------------------------------------------------------------------------------

    def get_uuid_from_area_name(self, name: str) -> str | None:
        """As ``RedisAggregator``, but None before the first ``market`` event."""
        if not self.area_name_uuid_mapping:
            return None
        return super().get_uuid_from_area_name(name)
