"""``RestMarketClient``: a market of the hosted exchange for a grid operator (SDK_API.md 5.2)."""

from __future__ import annotations

from typing import Any

from gsy_e_sdk.clients.area_client import MarketClient
from gsy_e_sdk.clients.rest_asset_client import RestAreaClient, overrides_event_hooks
from gsy_e_sdk.transports.rest import RestSettings


class RestMarketClient(RestAreaClient, MarketClient):
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
        settings = RestSettings.resolve(simulation_id, domain_name, websockets_domain_name)
        self._connect(area_id, settings, autoregister, overrides_event_hooks(type(self), RestMarketClient))

    def on_event_or_response(self, message: dict[str, Any]) -> None:
        """Called with every message of this market's socket; override to observe them."""
