"""The REST transport: HTTP through ``gsy_e_sdk.rest_session``, a websocket per client through
``gsy_e_sdk.websocket_connection``, the process's token from ``gsy_e_sdk.jwt_auth`` (REST.md).

Synchronous commands (aggregator selection and management, SCM data) return the HTTP answer.
Asynchronous ones (register, forecasts, grid fees, batches ...) POST now and are answered later
over the client's websocket: the waiter is registered before the POST goes out, so a fast answer
is not missed, and a falsy acknowledgement means "not posted" (REST.md 2). The socket of an asset
or market opens on demand, just before the first call answered over it; an aggregator's opens
at once and carries the events of every device it controls.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gsy_e_sdk import rest_session
from gsy_e_sdk.constants import REST_COMMAND_TIMEOUT, REST_REGISTER_TIMEOUT, WEBSOCKET_CONNECT_WAIT_SECS
from gsy_e_sdk.jwt_auth import token_provider
from gsy_e_sdk.transports import base
from gsy_e_sdk.transports.base import AggregatorReceiver, Batch, BatchTransport, NotSent, Receiver, Timeouts, Transport
from gsy_e_sdk.utils import domain_name_from_env, simulation_id_from_env, websocket_domain_name_from_env
from gsy_e_sdk.websocket_connection import WebsocketConnection
from gsy_e_sdk.websocket_device import (
    AggregatorWebsocketMessageReceiver,
    CommandResponseTimeout,
    DeviceWebsocketMessageReceiver,
    WebsocketMessageReceiver,
)
from gsy_e_sdk.wire import rest_paths as paths
from gsy_e_sdk.wire.catalogue import BY_NAME
from gsy_e_sdk.wire.pending import new_transaction_id

if TYPE_CHECKING:
    from gsy_e_sdk.jwt_auth import TokenProvider

logger = logging.getLogger(__name__)

# Commands only the hosted exchange has (REST.md 3.1).
LIVE_GENERATION = "set-live-generation"  # its answer's command, hyphens included
SCM_MEMBER_DATA = "set_scm_timeseries_and_member_data"
SCM_GLOBAL_DATA = "set_scm_global_data"

REST_TIMEOUTS = Timeouts(
    register=REST_REGISTER_TIMEOUT,
    aggregator=REST_COMMAND_TIMEOUT,  # unused: selection and management answer over HTTP
    command=REST_COMMAND_TIMEOUT,
    batch=REST_COMMAND_TIMEOUT,
)


@dataclass(frozen=True)
class RestSettings:
    """Where the hosted exchange is and who we are there (REST.md 6)."""

    simulation_id: str
    domain_name: str
    websockets_domain_name: str
    auth: TokenProvider

    @classmethod
    def resolve(
        cls,
        simulation_id: str | None,
        domain_name: str | None,
        websockets_domain_name: str | None,
        sim_api_domain_name: str | None = None,
    ) -> RestSettings:
        """The given values, else the environment's; logs in now, so that bad credentials
        surface at construction (once per process)."""
        simulation = simulation_id if simulation_id is not None else simulation_id_from_env()
        if not simulation:
            # Without it every URL names no simulation: fail here, not after minutes of retries.
            raise ValueError(
                "API_CLIENT_SIMULATION_ID is not set: a REST client needs the id of the simulation it joins "
                "(export API_CLIENT_SIMULATION_ID=<id>, or pass simulation_id=...)"
            )
        domain = (domain_name or domain_name_from_env()).rstrip("/")
        settings = cls(
            simulation,
            domain,
            (websockets_domain_name or websocket_domain_name_from_env()).rstrip("/"),
            token_provider(sim_api_domain_name or domain),
        )
        settings.auth.token()
        return settings

    @property
    def aggregator_prefix(self) -> str:
        return paths.url(self.domain_name, paths.AGGREGATOR_API, sim=self.simulation_id)

    @property
    def configuration_prefix(self) -> str:
        return paths.url(self.domain_name, paths.CONFIGURATION, sim=self.simulation_id)

    @property
    def simulation_endpoint_prefix(self) -> str:
        return paths.url(self.domain_name, paths.SIMULATION, sim=self.simulation_id).rstrip("/")

    def endpoint_prefix(self, area_uuid: str) -> str:
        return paths.url(self.domain_name, paths.AREA, sim=self.simulation_id, area=area_uuid).rstrip("/")

    def websocket_url(self, template: str, **values: str) -> str:
        return paths.url(self.websockets_domain_name, template, sim=self.simulation_id, **values)


class RestTransport(Transport):
    """HTTP, the websocket and the command routes; the asset/market and aggregator transports
    differ in their socket's address and what it carries."""

    dispatcher: WebsocketMessageReceiver  # set by open()

    def __init__(self, settings: RestSettings, area_uuid: str, timeouts: Timeouts = REST_TIMEOUTS) -> None:
        self.settings = settings
        self.area_uuid = area_uuid
        self.timeouts = timeouts
        self.socket: WebsocketConnection | None = None
        self._socket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.area_uuid})"

    @property
    def endpoint_prefix(self) -> str:
        return self.settings.endpoint_prefix(self.area_uuid)

    def websocket_url(self) -> str:
        return self.settings.websocket_url(paths.WEBSOCKET_AREA, area=self.area_uuid)

    # HTTP ---------------------------------------------------------------------------------------

    def http(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        """The parsed JSON of a 2xx answer, else None (logged by ``rest_session``)."""
        return rest_session.request_json(method, url, body, auth=self.settings.auth)

    # The websocket ------------------------------------------------------------------------------

    def start_websocket(self) -> None:
        """Open the socket (idempotent); it reconnects by itself until ``close()``."""
        with self._socket_lock:
            if self.socket is None:
                self.socket = WebsocketConnection(
                    self.websocket_url(),
                    self.settings.auth,
                    self.dispatcher.received_message,
                    on_disconnect=self.dispatcher.connection_lost,
                    finished=lambda: bool(getattr(self.dispatcher.client, "is_finished", False)),
                ).start()

    def ensure_websocket(self) -> None:
        """Open the socket if needed and wait for it: answers sent before it is up are lost."""
        if self.socket is not None and self.socket.is_connected:
            return
        self.start_websocket()
        socket = self.socket
        assert socket is not None  # start_websocket opened it
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
            if self.socket is not None:
                self.socket.close()
                self.socket = None

    # Commands -----------------------------------------------------------------------------------

    def send(self, command: str, payload: dict[str, Any], *, wait: bool) -> Any:
        prefix = self.settings.aggregator_prefix
        if command == base.SELECT:
            answer = self.http("POST", prefix + paths.SELECT_AGGREGATOR, payload)
            if isinstance(answer, dict) and answer.get("aggregator_uuid"):
                selection_confirmed(answer["aggregator_uuid"], payload.get("device_uuid"), selected=True)
            return answer
        if command == base.UNSELECT:
            answer = self.http("POST", prefix + paths.UNSELECT_AGGREGATOR, payload)
            if answer is not None:
                selection_confirmed(payload.get("aggregator_uuid"), payload.get("device_uuid"), selected=False)
            return answer
        if command == base.DELETE:
            return self.http("POST", prefix + paths.DELETE_AGGREGATOR, payload)
        if command == SCM_MEMBER_DATA:
            return self.http("POST", f"{self.endpoint_prefix}/{paths.SCM_MEMBER_DATA}", payload)
        if command == SCM_GLOBAL_DATA:
            return self.http("POST", f"{self.settings.simulation_endpoint_prefix}/{paths.SCM_GLOBAL_DATA}", payload)
        if command in (base.REGISTER, base.UNREGISTER):
            path = paths.REGISTER if command == base.REGISTER else paths.UNREGISTER
            return self._asynchronous("POST", path, payload, command, self.timeouts.register, wait, needs_socket=True)
        if command == LIVE_GENERATION:
            return self._asynchronous("POST", paths.LIVE_GENERATION, payload, command, self.timeouts.command, wait)
        spec = BY_NAME[command]
        return self._asynchronous(spec.rest_method, spec.rest_path, payload, command, self.timeouts.command, wait)

    def _asynchronous(
        self,
        method: str,
        path: str,
        payload: dict[str, Any],
        command: str,
        timeout: float,
        wait: bool,
        needs_socket: bool = False,
    ) -> Any:
        """POST now, the answer later over the websocket (REST.md 2): that answer, or None.

        None when the request failed, the acknowledgement was falsy (the original's "not
        posted") or ``wait`` is False. The socket is opened first when the answer is awaited,
        or when ``needs_socket`` (registration updates ``registered`` even when not awaited).
        """
        if wait or needs_socket:
            self.ensure_websocket()
        transaction_id = payload["transaction_id"]
        if wait:
            self.dispatcher.expect(command, transaction_id)
        ack = self.http(method, f"{self.endpoint_prefix}/{path}", payload)
        if not ack:
            self.dispatcher.discard(command, transaction_id)
            if ack is not None:
                logger.error("%r: %s was not posted (acknowledgement %r).", self, command, ack)
            return None
        if not wait:
            return None
        return self.dispatcher.wait_for_command_response(command, transaction_id, timeout)


class RestAreaTransport(RestTransport):
    """An asset or market: its socket ``{ws}/{sim}/{area}/`` carries its answers."""

    def open(self, receiver: Receiver) -> None:
        self.dispatcher = DeviceWebsocketMessageReceiver(receiver)


class RestAggregatorTransport(RestTransport, BatchTransport):
    """An aggregator: found by name or created, its socket ``{ws}/{sim}/aggregator/{uuid}/``,
    batches posted to ``batch-commands/`` (REST.md 3.3, 4.3). ``error`` is raised when the
    exchange can neither list nor create it."""

    dispatcher: AggregatorWebsocketMessageReceiver

    def __init__(self, settings: RestSettings, *, error: type[Exception], timeouts: Timeouts = REST_TIMEOUTS) -> None:
        super().__init__(settings, "", timeouts)  # "": the asset half of an Aggregator (SDK_API.md 5.3)
        self.error = error
        self.aggregator_uuid = ""
        self._finished = False

    def websocket_url(self) -> str:
        return self.settings.websocket_url(paths.WEBSOCKET_AGGREGATOR, agg=self.aggregator_uuid)

    def list_aggregators(self) -> list[dict[str, Any]]:
        """This user's aggregators in this simulation (``[]`` when the call fails)."""
        answer = self.http("GET", self.settings.aggregator_prefix + paths.LIST_AGGREGATORS)
        return answer if isinstance(answer, list) else []

    def registry(self) -> Any:
        """The grid with registration status (REST.md 3.4)."""
        return self.http("GET", self.settings.configuration_prefix + paths.REGISTRY)

    def open(self, receiver: Receiver) -> None:
        self.dispatcher = AggregatorWebsocketMessageReceiver(base.aggregator_receiver(receiver))

    def attach(self, name: str, aggregator_uuid: str | None = None) -> str:
        """Take over ``aggregator_uuid``, else reuse the (last listed) aggregator of this name,
        else create one (REST.md 3.3); then open its socket and wait for it."""
        self.aggregator_uuid = aggregator_uuid or self._find_or_create(name)
        _local_aggregators[self.aggregator_uuid] = self.dispatcher.client
        self.ensure_websocket()
        return self.aggregator_uuid

    def _find_or_create(self, name: str) -> str:
        named = [entry for entry in self.list_aggregators() if isinstance(entry, dict) and entry.get("name") == name]
        if named and named[-1].get("uuid"):
            logger.info("Reusing aggregator %r (%s).", name, named[-1]["uuid"])
            return named[-1]["uuid"]
        prefix = self.settings.aggregator_prefix
        answer = self.http("POST", prefix + paths.CREATE_AGGREGATOR, {"name": name})
        if not isinstance(answer, dict) or not answer.get("uuid"):
            raise self.error(f"Could not create aggregator {name!r} at {prefix} (answer: {answer!r})")
        return answer["uuid"]

    def send_batch(self, batch: Batch, *, wait: bool) -> dict[str, Any] | None:
        if wait:
            self.ensure_websocket()  # the answer comes over it: wait while it reconnects
        transaction_id = new_transaction_id()
        if wait:
            self.dispatcher.expect(base.BATCH, transaction_id)
            if self._finished:  # finish arrived in between: nobody would answer
                self.dispatcher.discard(base.BATCH, transaction_id)
                return None
        body = {"aggregator_uuid": self.aggregator_uuid, "batch_commands": batch, "transaction_id": transaction_id}
        if not self.http("POST", self.settings.aggregator_prefix + paths.BATCH_COMMANDS, body):
            self.dispatcher.discard(base.BATCH, transaction_id)
            raise NotSent(f"batch {transaction_id} of aggregator {self.aggregator_uuid}")
        if not wait:
            return None
        try:
            return self.dispatcher.wait_for_command_response(base.BATCH, transaction_id, self.timeouts.batch)
        except CommandResponseTimeout as exc:
            raise CommandResponseTimeout(f"Sending batch commands timed out. ({exc})") from None

    def finished(self) -> None:
        self._finished = True
        self.dispatcher.release(base.BATCH, None)


# Aggregators of this process, so a selection made here shows in the list at once -------------

_local_aggregators: weakref.WeakValueDictionary[str, AggregatorReceiver] = weakref.WeakValueDictionary()


def selection_confirmed(aggregator_uuid: Any, device_uuid: Any, selected: bool) -> None:
    """A client of this process (un)selected ``aggregator_uuid``: update its device list now.

    The websocket event ``selected_by_device`` would do the same a moment later; doing it here
    means a script that selects and then sends a batch at once does not race the event.
    """
    aggregator = _local_aggregators.get(aggregator_uuid) if isinstance(aggregator_uuid, str) else None
    if aggregator is not None:
        aggregator._on_selection(device_uuid, selected)
