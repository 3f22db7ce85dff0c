"""How the fleet talks to an exchange: over Redis (local) or REST + websockets (hosted).

Both links do the same three things: attach the fleet (find areas, find or create the
aggregators, select the devices), deliver each aggregator's events to the dispatcher, and submit
batches for workers. Fleet config ``exchange: {mode: rest, domain_name, websocket_domain_name,
simulation_id}`` picks REST; credentials come from env ``API_CLIENT_USERNAME`` /
``API_CLIENT_PASSWORD`` as for every SDK client, and each value falls back to the SDK's
``API_CLIENT_*`` environment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from gsy_e_sdk import rest_session
from gsy_e_sdk.batch import batch_envelope, submit_batch
from gsy_e_sdk.jwt_auth import token_provider
from gsy_e_sdk.utils import (
    domain_name_from_env,
    get_aggregator_prefix,
    get_configuration_prefix,
    simulation_id_from_env,
    websocket_domain_name_from_env,
)
from gsy_e_sdk.websocket_connection import WebsocketConnection
from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire import rest_paths as paths
from gsy_e_sdk.wire.events import EVENT_NAMES
from gsy_e_sdk.wire.redis_connection import RedisConnection
from gsy_e_sdk.wire.slug import slugify
from orchestrator.attach import AttachedAggregator, BeforeSelect, FleetAttacher, plan_fleet
from orchestrator.config import FleetConfig, FleetConfigError

logger = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
Submission = tuple[str, dict[str, list[dict]], str]  # (aggregator uuid, batch, transaction id)
CONNECT_TIMEOUT_S = 30.0
SELECT_CONCURRENCY = 16
SUBMIT_CONCURRENCY = 8


class ExchangeLink(Protocol):
    answers_batches: bool  # True when submit(wait=True) returns the exchange's response envelope

    def attach(self, before_select: BeforeSelect | None = None) -> list[AttachedAggregator]:
        """Find or create the aggregators; call ``before_select`` with them (uuids and devices
        known), then select the devices. An exchange started with ``--start-when-selected``
        sends its first market event at the last selection: whoever listens must listen first."""

    def listen(
        self, aggregator: AttachedAggregator, on_event: EventHandler, on_batch_response: EventHandler
    ) -> None: ...

    def submit(
        self,
        aggregator_uuid: str,
        batch: dict[str, list[dict]],
        transaction_id: str,
        timeout: float,
        wait: bool = False,
    ) -> dict[str, Any] | None: ...

    def submit_many(self, submissions: list[Submission]) -> list[Exception | None]:
        """Send several batches without waiting for answers; per batch, the error that kept it
        from the exchange (None when sent), so one failure never holds back the others."""

    def listening(self) -> bool:
        """False once the thread that reads events is dead: nothing would reach the fleet again."""


class RedisLink:
    """The local exchange's Redis protocol (REDIS.md); batch answers come back to the worker."""

    answers_batches = True

    def __init__(self, config: FleetConfig, connection: RedisConnection) -> None:
        self.config = config
        self.connection = connection

    def attach(self, before_select: BeforeSelect | None = None) -> list[AttachedAggregator]:
        return FleetAttacher(self.config, self.connection).attach(before_select)

    def listening(self) -> bool:
        return self.connection.reader_alive

    def listen(self, aggregator: AttachedAggregator, on_event: EventHandler, on_batch_response: EventHandler) -> None:
        self.connection.subscribe(
            {
                channels.aggregator_events(aggregator.uuid): lambda _channel, payload: on_event(payload),
                channels.batch_response(aggregator.uuid): lambda _channel, payload: on_batch_response(payload),
            }
        )

    def submit(
        self,
        aggregator_uuid: str,
        batch: dict[str, list[dict]],
        transaction_id: str,
        timeout: float,
        wait: bool = False,
    ) -> dict[str, Any] | None:
        # An empty batch is never waited for: it only tells the exchange we acted.
        return submit_batch(self.connection, aggregator_uuid, batch, transaction_id, timeout, wait=wait and bool(batch))

    def submit_many(self, submissions: list[Submission]) -> list[Exception | None]:
        # One pipeline: a shard task's batches cost one round trip, not one each.
        try:
            self.connection.publish_many(
                (channels.batch_commands(), batch_envelope(*submission)) for submission in submissions
            )
        except Exception as exc:  # noqa: BLE001 - reported per batch, as the REST link does
            return [exc] * len(submissions)
        return [None] * len(submissions)


class RestLink:
    """The hosted exchange's REST + websocket protocol (REST.md).

    Batch answers arrive on the aggregator's websocket, which only the dispatcher holds, so
    ``submit`` returns after the exchange acknowledged the POST, whatever ``wait`` says.
    """

    answers_batches = False

    def __init__(self, config: FleetConfig) -> None:
        exchange = config.exchange
        self.config = config
        self.domain = (exchange.domain_name or domain_name_from_env()).rstrip("/")
        self.websocket_domain = (exchange.websocket_domain_name or websocket_domain_name_from_env()).rstrip("/")
        self.simulation_id = exchange.simulation_id or simulation_id_from_env()
        if not self.simulation_id:
            raise FleetConfigError("exchange.simulation_id: required in rest mode (or env API_CLIENT_SIMULATION_ID)")
        try:
            self.auth = token_provider(self.domain)
        except KeyError as exc:
            raise FleetConfigError(
                f"rest mode needs env {exc.args[0]} (credentials never go in the fleet file)"
            ) from None
        self.aggregator_prefix = get_aggregator_prefix(self.domain, self.simulation_id)
        self.sockets: list[WebsocketConnection] = []
        self._submitter: ThreadPoolExecutor | None = None  # concurrent POSTs of a shard task's batches
        self._submit_lock = threading.Lock()

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        return rest_session.request_json(method, url, body, auth=self.auth)

    def listening(self) -> bool:
        return all(socket.thread.is_alive() for socket in self.sockets)

    # Attaching ----------------------------------------------------------------------------------
    def attach(self, before_select: BeforeSelect | None = None) -> list[AttachedAggregator]:
        registry = self._request("GET", get_configuration_prefix(self.domain, self.simulation_id) + paths.REGISTRY)
        if not isinstance(registry, dict):
            raise FleetConfigError(
                f"cannot read the registry of simulation {self.simulation_id} at {self.domain} "
                "(wrong credentials, domain or simulation id?)"
            )
        areas = registered_areas(registry)
        plan = plan_fleet(self.config, set(areas))
        existing = {
            entry.get("name"): entry.get("uuid")
            for entry in self._request("GET", self.aggregator_prefix + paths.LIST_AGGREGATORS) or []
            if isinstance(entry, dict)
        }
        for attached, assets, markets in plan:
            attached.uuid = existing.get(attached.name) or self._create(attached.name)
            attached.assets = {areas[name]: name for name in assets}
            attached.markets = {areas[slug]: slug for slug in markets}
        aggregators = [attached for attached, _, _ in plan]
        if before_select is not None:
            before_select(aggregators)
        self._select(plan)
        return aggregators

    def _create(self, name: str) -> str:
        created = self._request("POST", self.aggregator_prefix + paths.CREATE_AGGREGATOR, {"name": name})
        if not isinstance(created, dict) or not created.get("uuid"):
            raise FleetConfigError(f"the exchange did not create aggregator {name!r}")
        logger.info("aggregator %s (%s) created", name, created["uuid"])
        return created["uuid"]

    def _select(self, plan) -> None:
        pairs = [(attached, device) for attached, _, _ in plan for device in (*attached.assets, *attached.markets)]

        def select(pair: tuple[AttachedAggregator, str]) -> str | None:
            attached, device = pair
            answer = self._request(
                "POST",
                self.aggregator_prefix + paths.SELECT_AGGREGATOR,
                {"aggregator_uuid": attached.uuid, "device_uuid": device},
            )
            if isinstance(answer, dict) and answer.get("aggregator_uuid") == attached.uuid:
                return None
            return f"{device} could not be selected by {attached.name!r}"

        with ThreadPoolExecutor(SELECT_CONCURRENCY, thread_name_prefix="fleet-select") as pool:
            problems = [problem for problem in pool.map(select, pairs) if problem]
        if problems:
            raise FleetConfigError("; ".join(problems[:20]))
        logger.info("fleet attached over REST: %d aggregators, %d devices", len(plan), len(pairs))

    # Events and batches ---------------------------------------------------------------------------
    def listen(self, aggregator: AttachedAggregator, on_event: EventHandler, on_batch_response: EventHandler) -> None:
        def on_message(message: dict[str, Any]) -> None:
            if message.get("event") in EVENT_NAMES:  # the socket's selection events are not the fleet's
                on_event(message)
            elif message.get("command") == "batch_commands":
                on_batch_response(message)

        url = paths.url(self.websocket_domain, paths.WEBSOCKET_AGGREGATOR, sim=self.simulation_id, agg=aggregator.uuid)
        socket = WebsocketConnection(url, self.auth, on_message).start()
        self.sockets.append(socket)
        if not socket.wait_connected(CONNECT_TIMEOUT_S):
            raise FleetConfigError(f"the websocket of aggregator {aggregator.name!r} did not connect")

    def submit(
        self,
        aggregator_uuid: str,
        batch: dict[str, list[dict]],
        transaction_id: str,
        timeout: float,
        wait: bool = False,
    ) -> dict[str, Any] | None:
        ack = self._request(
            "POST",
            self.aggregator_prefix + paths.BATCH_COMMANDS,
            {"aggregator_uuid": aggregator_uuid, "batch_commands": batch, "transaction_id": transaction_id},
        )
        if not ack:
            raise ConnectionError(f"the exchange did not accept batch {transaction_id}")
        return None

    def submit_many(self, submissions: list[Submission]) -> list[Exception | None]:
        def post(submission: Submission) -> Exception | None:
            aggregator_uuid, batch, transaction_id = submission
            try:
                self.submit(aggregator_uuid, batch, transaction_id, self.config.task_timeout)
            except Exception as exc:  # noqa: BLE001 - reported per batch
                return exc
            return None

        if len(submissions) == 1:
            return [post(submissions[0])]
        with self._submit_lock:
            if self._submitter is None:
                self._submitter = ThreadPoolExecutor(SUBMIT_CONCURRENCY, thread_name_prefix="fleet-submit")
        return list(self._submitter.map(post, submissions))

    def close(self) -> None:
        for socket in self.sockets:
            socket.close()
        if self._submitter is not None:
            self._submitter.shutdown(wait=False)


def registered_areas(registry: dict[str, Any]) -> dict[str, str]:
    """Asset names and market slugs the user may control -> uuid (REST.md 3.4)."""
    areas: dict[str, str] = {}
    stack = [registry]
    while stack:
        node = stack.pop()
        stack.extend(node.get("children") or [])
        if node.get("registered") is True and node.get("uuid"):
            name = str(node.get("name", ""))
            areas[slugify(name) if node.get("type") == "Area" else name] = node["uuid"]
    return areas


def make_link(config: FleetConfig, connection: RedisConnection) -> ExchangeLink:
    return RestLink(config) if config.exchange.mode == "rest" else RedisLink(config, connection)
