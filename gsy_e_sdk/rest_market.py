"""``RestMarketClient``: a market of the hosted exchange for a grid operator (SDK_API.md 5.2)."""

from __future__ import annotations

from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.clients.rest_asset_client import RestAreaClient, overrides_event_hooks
from gsy_e_sdk.constants import REST_COMMAND_TIMEOUT
from gsy_e_sdk.wire.catalogue import BY_NAME


class RestMarketClient(RestAreaClient):
    """A market (``area_id`` is its uuid): grid fees and DSO statistics.

    Like ``RestAssetClient``, its websocket opens lazily, just before the first call answered
    over it (``grid_fees``, ``last_market_dso_stats``, ``register``), unless a subclass overrides
    ``on_event_or_response`` or ``autoregister`` is set (then at construction). A market
    controlled through an aggregator needs no socket of its own. ``autoregister`` (shown by the
    original README, absent from its code) registers the market at construction, as the Redis
    client does; the hosted platform needs no registration to select an aggregator.
    """

    def __init__(
        self,
        area_id: str,
        simulation_id: str | None = None,
        domain_name: str | None = None,
        websockets_domain_name: str | None = None,
        autoregister: bool = False,
    ) -> None:
        self.area_id = area_id
        self._init_rest(area_id, simulation_id, domain_name, websockets_domain_name, None)
        self._open(autoregister, overrides_event_hooks(type(self), RestMarketClient))

    def on_event_or_response(self, message: dict[str, Any]) -> None:
        """Called with every message of this market's socket; override to observe them."""

    def grid_fees(self, fee_cents_per_kWh: float) -> dict[str, Any] | None:
        """Set the market's constant fee (ct/kWh) from the next slot on; the ``grid_fees`` answer."""
        fee = validation.non_negative(fee_cents_per_kWh, "fee_cents_per_kWh")
        return self._command(
            "POST",
            f"{self.endpoint_prefix}/{BY_NAME['grid_fees'].rest_path}",
            {"fee_const": fee},
            "grid_fees",
            REST_COMMAND_TIMEOUT,
        )

    def last_market_dso_stats(self) -> dict[str, Any] | None:
        """The market's statistics of the last finished slot (``dso_market_stats`` answer)."""
        return self._command(
            "GET",
            f"{self.endpoint_prefix}/{BY_NAME['dso_market_stats'].rest_path}",
            {},
            "dso_market_stats",
            REST_COMMAND_TIMEOUT,
        )
