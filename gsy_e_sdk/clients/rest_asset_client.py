"""``RestAssetClient``: one asset on the hosted exchange, over REST + websocket (SDK_API.md 5.1).

``RestAreaClient`` holds what the asset and market clients share: settings from the
environment, the process-wide token, aggregator selection, the lazily opened websocket and the
"POST now, answer later on the websocket" command pattern (REST.md 2).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from gsy_e_sdk import rest_session, validation
from gsy_e_sdk.aggregator_core import selection_confirmed
from gsy_e_sdk.client_interface import APIClientInterface
from gsy_e_sdk.constants import REST_COMMAND_TIMEOUT, REST_REGISTER_TIMEOUT, WEBSOCKET_CONNECT_WAIT_SECS
from gsy_e_sdk.hooks import EventHooks, HookedClient
from gsy_e_sdk.jwt_auth import token_provider
from gsy_e_sdk.utils import (
    domain_name_from_env,
    get_aggregator_prefix,
    get_configuration_prefix,
    simulation_id_from_env,
    websocket_domain_name_from_env,
)
from gsy_e_sdk.websocket_connection import WebsocketConnection
from gsy_e_sdk.websocket_device import DeviceWebsocketMessageReceiver, WebsocketMessageReceiver
from gsy_e_sdk.wire import rest_paths as paths
from gsy_e_sdk.wire.catalogue import BY_NAME
from gsy_e_sdk.wire.pending import new_transaction_id

logger = logging.getLogger(__name__)

REGISTER_COMMAND_TIMEOUT = REST_REGISTER_TIMEOUT

# Overriding any of these means the client wants events, so its socket opens at construction.
EVENT_HOOKS = ("on_market_slot", "on_market_cycle", "on_tick", "on_trade", "on_finish", "on_event_or_response")


def overrides_event_hooks(cls: type, base: type) -> bool:
    return any(getattr(cls, name, None) is not getattr(base, name, None) for name in EVENT_HOOKS)


class RestAreaClient(HookedClient):
    """An asset or market of the hosted exchange, addressed by uuid."""

    def _init_rest(
        self,
        area_uuid: str,
        simulation_id: str | None,
        domain_name: str | None,
        websockets_domain_name: str | None,
        sim_api_domain_name: str | None,
    ) -> None:
        self._rest_uuid = area_uuid
        self.simulation_id = simulation_id if simulation_id is not None else simulation_id_from_env()
        self.domain_name = (domain_name or domain_name_from_env()).rstrip("/")
        self.websockets_domain_name = (websockets_domain_name or websocket_domain_name_from_env()).rstrip("/")
        self._auth = token_provider(sim_api_domain_name or self.domain_name)
        self._auth.token()  # log in now: bad credentials surface at construction (once per process)
        self.aggregator_prefix = get_aggregator_prefix(self.domain_name, self.simulation_id)
        self.configuration_prefix = get_configuration_prefix(self.domain_name, self.simulation_id)
        self.active_aggregator: str | None = None
        self.registered = False
        if not hasattr(self, "_hooks"):  # an Aggregator has started its own, named after it
            self._start_hooks(area_uuid)
        self.callback_thread = self._hooks.executor
        self.dispatcher = self._new_dispatcher()
        self._socket: WebsocketConnection | None = None
        self._socket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._rest_uuid})"

    @property
    def jwt_token(self) -> str:
        """The process's current token for this client's auth domain ("" before a login)."""
        return self._auth.current or ""

    @property
    def endpoint_prefix(self) -> str:
        return paths.url(self.domain_name, paths.AREA, sim=self.simulation_id, area=self._rest_uuid).rstrip("/")

    @property
    def simulation_endpoint_prefix(self) -> str:
        return paths.url(self.domain_name, paths.SIMULATION, sim=self.simulation_id).rstrip("/")

    # Websocket ----------------------------------------------------------------------------------

    def _new_dispatcher(self) -> WebsocketMessageReceiver:
        return DeviceWebsocketMessageReceiver(self)

    def _websocket_url(self) -> str:
        return paths.url(
            self.websockets_domain_name, paths.WEBSOCKET_AREA, sim=self.simulation_id, area=self._rest_uuid
        )

    @property
    def websocket_thread(self) -> threading.Thread | None:
        """The process's websocket thread once this client's socket is open."""
        return self._socket.thread if self._socket is not None else None

    @property
    def websocket_connected(self) -> bool:
        return self._socket is not None and self._socket.is_connected

    def _open(self, autoregister: bool, wants_events: bool) -> None:
        """At construction: the socket when events or an answer will come over it, then register."""
        if autoregister or wants_events:
            self.start_websocket_connection()
        if autoregister:
            self.register(is_blocking=True)

    def start_websocket_connection(self) -> None:
        """Open this client's socket (idempotent); it reconnects by itself until ``close()``."""
        with self._socket_lock:
            if self._socket is None:
                self._socket = WebsocketConnection(
                    self._websocket_url(),
                    self._auth,
                    self.dispatcher.received_message,
                    on_disconnect=self.dispatcher.connection_lost,
                ).start()

    def _ensure_websocket(self) -> None:
        """Open the socket if needed and wait for it: answers sent before it is up are lost."""
        if self._socket is not None and self._socket.is_connected:
            return
        self.start_websocket_connection()
        socket = self._socket
        assert socket is not None  # start_websocket_connection opened it
        if not socket.wait_connected(WEBSOCKET_CONNECT_WAIT_SECS):
            logger.warning(
                "%r: websocket %s not connected after %g s; the answer may be lost.",
                self,
                socket.url,
                WEBSOCKET_CONNECT_WAIT_SECS,
            )

    def close(self) -> None:
        """Close this client's socket (the process's session and event loop stay)."""
        with self._socket_lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    # HTTP ---------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        return rest_session.request_json(method, url, body, auth=self._auth)

    def _command(
        self,
        method: str,
        url: str,
        body: dict[str, Any],
        command: str,
        timeout: float,
        wait: bool = True,
        needs_socket: bool | None = None,
    ) -> Any:
        """An asynchronous command (REST.md 2): the websocket answer, or None.

        The waiter is registered before the request goes out, so a fast answer is not missed.
        None when the request failed, the server's acknowledgement was falsy (the original's
        "not posted"), or ``wait`` is False.
        """
        if needs_socket is None:
            needs_socket = wait
        if needs_socket:
            self._ensure_websocket()
        transaction_id = new_transaction_id()
        if wait:
            self.dispatcher.expect(command, transaction_id)
        ack = self._request(method, url, {**body, "transaction_id": transaction_id})
        if not ack:
            self.dispatcher.discard(command, transaction_id)
            if ack is not None:
                logger.error("%r: %s was not posted (acknowledgement %r).", self, command, ack)
            return None
        if not wait:
            return None
        return self.dispatcher.wait_for_command_response(command, transaction_id, timeout)

    # Registration -------------------------------------------------------------------------------

    def register(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Register with the exchange; the websocket ``register`` answer when blocking.

        Non-blocking, ``registered`` is still updated when the answer arrives.
        """
        response = self._command(
            "POST",
            f"{self.endpoint_prefix}/{paths.REGISTER}",
            {},
            "register",
            REGISTER_COMMAND_TIMEOUT,
            wait=is_blocking,
            needs_socket=True,
        )
        if isinstance(response, dict):
            self.registered = bool(response.get("registered"))
        return response

    def unregister(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Unregister; the websocket ``unregister`` answer when blocking (the original required
        the argument, its README calls ``unregister()``: both work)."""
        response = self._command(
            "POST",
            f"{self.endpoint_prefix}/{paths.UNREGISTER}",
            {},
            "unregister",
            REGISTER_COMMAND_TIMEOUT,
            wait=is_blocking,
            needs_socket=True,
        )
        if is_blocking:
            self.registered = False
        return response

    # Aggregator selection -----------------------------------------------------------------------
    # ``is_blocking`` is accepted so that scripts written for the Redis clients run unchanged; the
    # HTTP call always returns with the exchange's answer.

    def select_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> None:
        """Hand control of this area to an aggregator; ``active_aggregator`` tells the outcome."""
        validation.area_uuid(aggregator_uuid, "aggregator_uuid")
        response = self._request(
            "POST",
            self.aggregator_prefix + paths.SELECT_AGGREGATOR,
            {"aggregator_uuid": aggregator_uuid, "device_uuid": self._rest_uuid},
        )
        self.active_aggregator = response.get("aggregator_uuid") if isinstance(response, dict) else None
        if self.active_aggregator:
            selection_confirmed(self.active_aggregator, self._rest_uuid, selected=True)
            logger.info("%r selected aggregator %s.", self, self.active_aggregator)

    def unselect_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> None:
        validation.area_uuid(aggregator_uuid, "aggregator_uuid")
        response = self._request(
            "POST",
            self.aggregator_prefix + paths.UNSELECT_AGGREGATOR,
            {"aggregator_uuid": aggregator_uuid, "device_uuid": self._rest_uuid},
        )
        self.active_aggregator = None
        if response is not None:
            selection_confirmed(aggregator_uuid, self._rest_uuid, selected=False)


class RestAssetClient(RestAreaClient, EventHooks, APIClientInterface):
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
        self.is_finished = False
        self._init_rest(asset_uuid, simulation_id, domain_name, websockets_domain_name, sim_api_domain_name)
        self._open(autoregister, start_websocket and overrides_event_hooks(type(self), RestAssetClient))

    # Hooks (override in a subclass) -------------------------------------------------------------

    def on_market_cycle(self, market_info: dict[str, Any]) -> None:
        """Deprecated; by default registers the client if it is not registered yet."""
        if not self.registered:
            self.register(is_blocking=True)

    # Forecasts, measurements, live data ---------------------------------------------------------

    def set_energy_forecast(
        self, energy_forecast_kWh: dict[str, float], do_not_wait: bool = False
    ) -> dict[str, Any] | None:
        """Forecast ``{time slot: kWh}``; the websocket answer unless ``do_not_wait``."""
        forecast = validation.energy_per_slot(energy_forecast_kWh, "energy_forecast_kWh")
        return self._command(
            "POST",
            f"{self.endpoint_prefix}/{BY_NAME['set_energy_forecast'].rest_path}",
            {"energy_forecast": forecast},
            "set_energy_forecast",
            REST_COMMAND_TIMEOUT,
            wait=not do_not_wait,
        )

    def set_energy_measurement(
        self, energy_measurement_kWh: dict[str, float], do_not_wait: bool = False
    ) -> dict[str, Any] | None:
        measurement = validation.energy_per_slot(energy_measurement_kWh, "energy_measurement_kWh")
        return self._command(
            "POST",
            f"{self.endpoint_prefix}/{BY_NAME['set_energy_measurement'].rest_path}",
            {"energy_measurement": measurement},
            "set_energy_measurement",
            REST_COMMAND_TIMEOUT,
            wait=not do_not_wait,
        )

    def set_live_generation(self, live_data: dict[str, Any], do_not_wait: bool = False) -> dict[str, Any] | None:
        return self._command(
            "POST",
            f"{self.endpoint_prefix}/{paths.LIVE_GENERATION}",
            {"live_data": live_data},
            "set-live-generation",
            REST_COMMAND_TIMEOUT,
            wait=not do_not_wait,
        )

    def set_scm_timeseries_and_member_data(self, scm_timeseries_members: dict[str, Any]) -> Any:
        """Fire and forget: the HTTP answer's JSON body."""
        return self._request("POST", f"{self.endpoint_prefix}/{paths.SCM_MEMBER_DATA}", dict(scm_timeseries_members))

    def set_scm_global_data(self, scm_global_data: dict[str, Any]) -> Any:
        return self._request(
            "POST", f"{self.simulation_endpoint_prefix}/{paths.SCM_GLOBAL_DATA}", dict(scm_global_data)
        )
