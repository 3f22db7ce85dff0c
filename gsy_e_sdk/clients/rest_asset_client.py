"""``RestAssetClient``: one asset on the hosted exchange, over REST + websocket (SDK_API.md 5.1).

The client's logic is ``gsy_e_sdk.clients.area_client``, shared with the Redis clients.
``RestAreaClient`` binds it to the REST transport (``gsy_e_sdk.transports.rest``) for assets and
markets, with the attributes REST scripts read (``simulation_id``, ``jwt_token``, prefixes ...)
and the rule for when the websocket opens.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gsy_e_sdk.client_interface import APIClientInterface
from gsy_e_sdk.clients.area_client import AreaClient, AssetClient
from gsy_e_sdk.constants import REST_REGISTER_TIMEOUT
from gsy_e_sdk.hooks import EventHooks
from gsy_e_sdk.transports.rest import (
    LIVE_GENERATION,
    SCM_GLOBAL_DATA,
    SCM_MEMBER_DATA,
    RestAreaTransport,
    RestSettings,
    RestTransport,
)
from gsy_e_sdk.websocket_connection import WebsocketConnection
from gsy_e_sdk.websocket_device import WebsocketMessageReceiver

REGISTER_COMMAND_TIMEOUT = REST_REGISTER_TIMEOUT

# Overriding any of these means the client wants events, so its socket opens at construction.
EVENT_HOOKS = ("on_market_slot", "on_market_cycle", "on_tick", "on_trade", "on_finish", "on_event_or_response")


def overrides_event_hooks(cls: type, base: type) -> bool:
    return any(getattr(cls, name, None) is not getattr(base, name, None) for name in EVENT_HOOKS)


class RestAreaClient(AreaClient):
    """An asset or market of the hosted exchange, addressed by uuid."""

    _transport: RestTransport

    def _connect(
        self,
        area_uuid: str,
        settings: RestSettings,
        autoregister: bool,
        wants_events: bool,
    ) -> None:
        """Bind to the REST transport; the socket at once when events or an answer will come
        over it, then register when asked."""
        self._init_rest(settings)
        AreaClient.__init__(self, RestAreaTransport(settings, area_uuid), area_uuid, area_uuid)
        if autoregister or wants_events:
            self.start_websocket_connection()
        if autoregister:
            self.register(is_blocking=True)

    def _init_rest(self, settings: RestSettings) -> None:
        self.simulation_id = settings.simulation_id
        self.domain_name = settings.domain_name
        self.websockets_domain_name = settings.websockets_domain_name
        self.aggregator_prefix = settings.aggregator_prefix
        self.configuration_prefix = settings.configuration_prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.area_uuid})"

    @property
    def jwt_token(self) -> str:
        """The process's current token for this client's auth domain ("" before a login)."""
        return self._transport.settings.auth.current or ""

    @property
    def endpoint_prefix(self) -> str:
        return self._transport.endpoint_prefix

    @property
    def simulation_endpoint_prefix(self) -> str:
        return self._transport.settings.simulation_endpoint_prefix

    @property
    def callback_thread(self) -> ThreadPoolExecutor:
        """The executor the hooks run on (the original's name)."""
        return self.executor

    @property
    def dispatcher(self) -> WebsocketMessageReceiver:
        """Routes the socket's messages and matches answers to waiting calls."""
        return self._transport.dispatcher

    # Websocket ----------------------------------------------------------------------------------

    @property
    def _socket(self) -> WebsocketConnection | None:
        return self._transport.socket

    @property
    def websocket_thread(self) -> threading.Thread | None:
        """The process's websocket thread once this client's socket is open."""
        return self._socket.thread if self._socket is not None else None

    @property
    def websocket_connected(self) -> bool:
        return self._socket is not None and self._socket.is_connected

    def start_websocket_connection(self) -> None:
        """Open this client's socket (idempotent); it reconnects by itself until ``close()``."""
        self._transport.start_websocket()


class RestAssetClient(RestAreaClient, AssetClient, EventHooks, APIClientInterface):
    """An asset of the hosted exchange.

    One websocket per aggregator, not per asset: an asset controlled through an aggregator
    needs no socket of its own. So the client opens its socket at construction only when it
    wants events - its class overrides an event hook (``on_market_slot``, ``on_market_cycle``,
    ``on_tick``, ``on_trade``, ``on_finish``, ``on_event_or_response``) - or when
    ``autoregister`` is set. Otherwise the socket is opened, and waited for, just before the
    first call whose answer comes over it (``register``, ``unregister``, waiting forecasts,
    measurements and live generation). ``start_websocket=False`` disables the eager opening;
    ``start_websocket_connection()`` opens it explicitly.
    """

    def __init__(
        self,
        asset_uuid: str,
        simulation_id: str | None = None,
        domain_name: str | None = None,
        websockets_domain_name: str | None = None,
        autoregister: bool = False,
        start_websocket: bool = True,
        sim_api_domain_name: str | None = None,
    ) -> None:
        self.asset_uuid = asset_uuid
        settings = RestSettings.resolve(simulation_id, domain_name, websockets_domain_name, sim_api_domain_name)
        wants_events = start_websocket and overrides_event_hooks(type(self), RestAssetClient)
        self._connect(asset_uuid, settings, autoregister, wants_events)

    # Hooks (override in a subclass) -------------------------------------------------------------

    def on_market_cycle(self, market_info: dict[str, Any]) -> None:
        """Deprecated; by default registers the client if it is not registered yet."""
        if not self.registered:
            self.register(is_blocking=True)

    # Live data and SCM data ---------------------------------------------------------------------

    def set_live_generation(self, live_data: dict[str, Any], do_not_wait: bool = False) -> dict[str, Any] | None:
        return self._send(LIVE_GENERATION, {"live_data": live_data}, not do_not_wait)

    def set_scm_timeseries_and_member_data(self, scm_timeseries_members: dict[str, Any]) -> Any:
        """Fire and forget: the HTTP answer's JSON body."""
        return self._send(SCM_MEMBER_DATA, dict(scm_timeseries_members), True)

    def set_scm_global_data(self, scm_global_data: dict[str, Any]) -> Any:
        return self._send(SCM_GLOBAL_DATA, dict(scm_global_data), True)
