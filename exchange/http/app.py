"""The facade's routes (REST.md 1, 3, 4) on Starlette.

Why Starlette on uvicorn: a small, well-kept ASGI toolkit with first-class websockets (including
HTTP denial responses during the handshake, which we use for 401s) and no framework magic; the
whole surface here is ~30 routes with pydantic bodies, so FastAPI's extra layer buys nothing.

Handlers authenticate, rate-limit and validate on the event loop, then do their Redis work in
the thread pool (``run_in_threadpool``) so a slow exchange never blocks other sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from exchange.descriptor import Node
from exchange.http import graphql_api
from exchange.http import models as m
from exchange.http.hub import Subscriber, WebsocketHub
from exchange.http.rate_limit import RateLimiter
from exchange.http.registry import registry_tree, scenario_tree
from exchange.http.relay import ExchangeRelay, ExchangeUnavailable, aggregator_key, area_key, encode
from exchange.http.state import AggregatorRecord, FacadeState
from exchange.http.tokens import TokenError, TokenIssuer
from exchange.http.users import Users
from gsy_e_sdk import __version__

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
# Commands the facade sends on its own behalf carry this prefix; their answers are not relayed.
OWN_TRANSACTION = "facade-"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}
        self.headers = headers or {}


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"API-VERSION": __version__})


class Facade:
    def __init__(self, relay: ExchangeRelay, users: Users, issuer: TokenIssuer, limiter: RateLimiter) -> None:
        self.relay = relay
        self.hub = relay.hub
        self.users = users
        self.issuer = issuer
        self.limiter = limiter
        self._market_registered: set[tuple[str, str]] = set()  # (run id, market uuid)

    # ------------------------------------------------------------------ request plumbing
    def _user(self, authorization: str | None) -> str:
        try:
            user = self.issuer.user_of(authorization)
        except TokenError as exc:
            raise ApiError(401, str(exc), {"WWW-Authenticate": 'JWT realm="api"'}) from None
        if user not in self.users.root:
            raise ApiError(401, "User is no longer known.", {"WWW-Authenticate": 'JWT realm="api"'})
        return user

    def _throttle(self, key: str) -> None:
        wait = self.limiter.retry_after(key)
        if wait:
            raise ApiError(429, f"Request was throttled. Expected available in {wait} seconds.",
                           {"Retry-After": str(wait)})

    @staticmethod
    async def _body(request: Request, model: type[BaseModel]) -> Any:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "Request body must be JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "Request body must be a JSON object.")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = m.field_errors(exc)
            raise ApiError(400, f"Invalid field {errors[0]['field']!r}: {errors[0]['message']}",
                           fields=errors) from None

    def _simulation(self, simulation_id: str) -> FacadeState:
        try:
            descriptor = self.relay.descriptor()
        except ExchangeUnavailable as exc:
            raise ApiError(503, str(exc)) from None
        if simulation_id != descriptor.simulation_id:
            raise ApiError(404, f"Simulation {simulation_id} not found.")
        return FacadeState(self.relay.connection.redis, descriptor.run_id)

    def _area(self, area_uuid: str) -> Node:
        node = self.relay.node(area_uuid)
        if node is None:
            raise ApiError(404, f"Area {area_uuid} not found in this simulation.")
        if node.prefix is None:
            raise ApiError(403, f"Area {node.name} ({area_uuid}) does not accept external connections.")
        return node

    @staticmethod
    def _own_aggregator(state: FacadeState, user: str, aggregator_uuid: str) -> AggregatorRecord:
        record = state.aggregator(aggregator_uuid)
        if record is None or record.user != user:  # another user's aggregator is not disclosed
            raise ApiError(404, f"Aggregator {aggregator_uuid} not found.")
        return record

    def endpoint(self, model: type[BaseModel] | None,
                 work: Callable[..., Response]) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, throttle, validate, then run ``work(user, params, body)`` off the loop."""

        async def handle(request: Request) -> Response:
            try:
                user = self._user(request.headers.get("authorization"))
                self._throttle(user)
                body = await self._body(request, model) if model is not None else None
                return await run_in_threadpool(work, user, request.path_params, body)
            except ApiError as exc:
                return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
            except ExchangeUnavailable as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)

        return handle

    # ------------------------------------------------------------------ login, health
    async def login(self, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        try:
            self._throttle(f"login:{client}")
            body = await self._body(request, m.Login)
        except ApiError as exc:
            return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
        if not self.users.check(body.username, body.password):
            logger.info("failed login for user %r from %s", body.username, client)
            return JSONResponse({"error": "No active account found with the given credentials"}, status_code=401)
        return _json({"access": self.issuer.issue(body.username)})

    async def health(self, _request: Request) -> Response:
        try:
            descriptor = await run_in_threadpool(self.relay.descriptor)
        except ExchangeUnavailable as exc:
            return JSONResponse({"status": "waiting", "error": str(exc)}, status_code=503)
        return _json({"status": "ok", "simulation_id": descriptor.simulation_id})

    # ------------------------------------------------------------------ asset and market commands
    def _ack(self, transaction_id: str) -> Response:
        return _json({"status": ACCEPTED, "transaction_id": transaction_id})

    def area_command(self, command: str, payload: Callable[[Node, Any, str], dict[str, Any]],
                     market: bool | None = None) -> Callable[[str, dict, Any], Response]:
        """An async command (REST.md 2): acknowledged now, answered on the area's websocket."""

        def work(_user: str, params: dict, body: Any) -> Response:
            self._simulation(params["sim"])
            node = self._area(params["area"])
            if market is not None and node.is_market != market:
                kind = "a market" if market else "an asset"
                raise ApiError(400, f"Area {node.name} is not {kind}; {command} needs {kind}.")
            transaction_id = self.relay.transaction_id(body.model_dump() if body else {})
            if node.is_market:
                self._register_market(node)
            self.relay.area_request(node, command, payload(node, body, transaction_id))
            return self._ack(transaction_id)

        return work

    def _register_market(self, node: Node) -> None:
        """Markets need no registration on the hosted platform; the exchange's direct mode does."""
        key = (self.relay.descriptor().run_id, node.uuid)
        if key not in self._market_registered:
            self.relay.area_request(node, "register_participant",
                                    {"name": node.prefix, "transaction_id": OWN_TRANSACTION + str(uuid.uuid4())})
            self._market_registered.add(key)

    def not_supported(self, what: str) -> Callable[[str, dict, Any], Response]:
        def work(_user: str, params: dict, _body: Any) -> Response:
            self._simulation(params["sim"])
            raise ApiError(501, f"{what} is not supported by the local exchange.")

        return work

    # ------------------------------------------------------------------ aggregators
    def list_aggregators(self, user: str, params: dict, _body: Any) -> Response:
        state = self._simulation(params["sim"])
        return _json([{"name": r.name, "uuid": r.uuid} for r in state.aggregators(user)])

    def _idempotent(self, state: FacadeState, body: m.Body, work: Callable[[str], tuple[int, Any]]) -> Response:
        """Answer a re-sent request (same transaction id) as before instead of applying it again."""
        transaction_id = self.relay.transaction_id(body.model_dump())
        previous = state.answered(transaction_id) if body.transaction_id else None
        if previous is None:
            previous = work(transaction_id)
            state.remember(transaction_id, *previous)
        status, answer = previous
        return _json(answer, status)

    def create_aggregator(self, user: str, params: dict, body: m.CreateAggregator) -> Response:
        state = self._simulation(params["sim"])

        def create(transaction_id: str) -> tuple[int, Any]:
            aggregator_uuid = str(uuid.uuid4())  # REST.md 7: a fresh uuid, not the transaction id
            response = self.relay.aggregator_command({"name": body.name, "type": "CREATE",
                                                      "transaction_id": aggregator_uuid})
            if response.get("status") == "error":
                return 409, {"error": f"The exchange refused to create aggregator {body.name}"}
            state.add_aggregator(AggregatorRecord(aggregator_uuid, body.name, user))
            return 200, {"name": body.name, "uuid": aggregator_uuid, "transaction_id": transaction_id}

        return self._idempotent(state, body, create)

    def delete_aggregator(self, user: str, params: dict, body: m.AggregatorRef) -> Response:
        state = self._simulation(params["sim"])

        def delete(transaction_id: str) -> tuple[int, Any]:
            record = self._own_aggregator(state, user, body.aggregator_uuid)
            response = self.relay.aggregator_command({"name": record.name, "aggregator_uuid": record.uuid,
                                                      "type": "DELETE", "transaction_id": transaction_id})
            state.remove_aggregator(record.uuid)
            return 200, response

        return self._idempotent(state, body, delete)

    def select_aggregator(self, user: str, params: dict, body: m.Selection) -> Response:
        state = self._simulation(params["sim"])

        def select(transaction_id: str) -> tuple[int, Any]:
            record = self._own_aggregator(state, user, body.aggregator_uuid)
            node = self._area(body.device_uuid)
            answer = {"status": "SELECTED", "aggregator_uuid": record.uuid, "device_uuid": node.uuid,
                      "transaction_id": transaction_id}
            if state.owners().get(node.uuid) == record.uuid:
                return 200, answer  # selecting again what is already selected is not an error here
            response = self.relay.aggregator_command({"aggregator_uuid": record.uuid, "device_uuid": node.uuid,
                                                      "type": "SELECT", "transaction_id": transaction_id})
            if response.get("status") != "SELECTED":
                return 409, {"error": response.get("msg") or "The exchange refused the selection", **answer,
                             "status": "error"}
            state.select(record.uuid, node.uuid)
            self.relay.watch_aggregator(record.uuid)
            self.hub.deliver(aggregator_key(record.uuid),
                             encode({"event": "selected_by_device", "device_uuid": node.uuid}))
            return 200, answer

        return self._idempotent(state, body, select)

    def unselect_aggregator(self, user: str, params: dict, body: m.Selection) -> Response:
        state = self._simulation(params["sim"])

        def unselect(transaction_id: str) -> tuple[int, Any]:
            record = self._own_aggregator(state, user, body.aggregator_uuid)
            response = self.relay.aggregator_command({"aggregator_uuid": record.uuid, "device_uuid": body.device_uuid,
                                                      "type": "UNSELECT", "transaction_id": transaction_id})
            if response.get("status") != "UNSELECTED":
                return 409, {"error": response.get("msg") or "The exchange refused to unselect", **response}
            state.unselect(record.uuid, body.device_uuid)
            self.hub.deliver(aggregator_key(record.uuid),
                             encode({"event": "unselected_by_device", "device_uuid": body.device_uuid}))
            return 200, response

        return self._idempotent(state, body, unselect)

    def batch_commands(self, user: str, params: dict, body: m.Batch) -> Response:
        state = self._simulation(params["sim"])
        record = self._own_aggregator(state, user, body.aggregator_uuid)
        transaction_id = self.relay.transaction_id(body.model_dump())
        self.relay.send_batch(record.uuid, body.batch_commands, transaction_id)
        return self._ack(transaction_id)

    # ------------------------------------------------------------------ registry and GraphQL
    def registry(self, _user: str, params: dict, _body: Any) -> Response:
        state = self._simulation(params["sim"])
        names = {r.uuid: r.name for r in state.aggregators()}
        owners = {device: names.get(aggregator) for device, aggregator in state.owners().items()}
        return _json(registry_tree(self.relay.descriptor().root, owners))

    def graphql(self, user: str, _params: dict, body: m.Body) -> Response:
        data = body.model_dump()
        query = data.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "Invalid field 'query': a GraphQL query string is required.")
        variables = data.get("variables") if isinstance(data.get("variables"), dict) else None
        descriptor = self.relay.descriptor()
        state = FacadeState(self.relay.connection.redis, descriptor.run_id)

        def configuration(config_uuid: str) -> dict[str, Any] | None:
            if config_uuid != descriptor.simulation_id:
                return None
            return {"uuid": descriptor.simulation_id, "name": descriptor.root.name,
                    "tree": scenario_tree(descriptor.root)}

        def aggregators() -> list[dict[str, Any]]:
            return [{"configUuid": descriptor.simulation_id, "name": r.name,
                     "devicesList": [{"deviceUuid": device} for device in state.devices(r.uuid)]}
                    for r in state.aggregators(user)]

        return _json(graphql_api.execute(query, variables, data.get("operationName"), configuration, aggregators))

    # ------------------------------------------------------------------ websockets
    async def _accept(self, websocket: WebSocket, check: Callable[[str], Any]) -> Any:
        """Authenticate the handshake; refuse with the HTTP status and JSON body of REST calls."""
        try:
            user = self._user(websocket.headers.get("authorization"))
            return await run_in_threadpool(check, user)
        except ApiError as exc:
            await _deny(websocket, exc.status, exc.body)
        except ExchangeUnavailable as exc:
            await _deny(websocket, 503, {"error": str(exc)})
        return None

    async def aggregator_socket(self, websocket: WebSocket) -> None:
        params = websocket.path_params

        def check(user: str) -> list[str]:
            state = self._simulation(params["sim"])
            record = self._own_aggregator(state, user, params["agg"])
            self.relay.watch_aggregator(record.uuid)
            return state.devices(record.uuid)

        devices = await self._accept(websocket, check)
        if devices is None:
            return
        subscriber = self.hub.attach(aggregator_key(params["agg"]))
        await websocket.accept()
        # A reconnecting aggregator learns its devices again: selections made while it was away
        # (or before a facade restart) would otherwise never reach it.
        for device in devices:
            await websocket.send_bytes(encode({"event": "selected_by_device", "device_uuid": device}))
        await _pump(websocket, subscriber, self.hub)

    async def area_socket(self, websocket: WebSocket) -> None:
        params = websocket.path_params

        def check(_user: str) -> Node:
            self._simulation(params["sim"])
            node = self._area(params["area"])
            self.relay.watch_area(node)
            return node

        node = await self._accept(websocket, check)
        if node is None:
            return
        subscriber = self.hub.attach(area_key(node.uuid))
        await websocket.accept()
        await _pump(websocket, subscriber, self.hub, skip_prefix=OWN_TRANSACTION.encode())


async def _deny(websocket: WebSocket, status: int, body: dict[str, Any]) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse(body, status_code=status))
    else:
        await websocket.close(code=1008, reason=body.get("error", "")[:120])


async def _pump(websocket: WebSocket, subscriber: Subscriber, hub: WebsocketHub, skip_prefix: bytes = b"") -> None:
    """Send queued frames (binary, REST.md 4.2) until the client leaves; the client never sends."""
    marker = b'"transaction_id": "' + skip_prefix if skip_prefix else b""

    async def send() -> None:
        while True:
            frame = await subscriber.queue.get()
            if frame is None:
                await websocket.close(code=1013, reason="client too slow")
                return
            if marker and marker in frame:
                continue
            await websocket.send_bytes(frame)

    sender = asyncio.create_task(send())
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        sender.cancel()
        hub.detach(subscriber)


def _named(node: Node, _body: Any, transaction_id: str) -> dict[str, Any]:
    return {"name": node.prefix, "transaction_id": transaction_id}


def _as_sent(_node: Node, body: BaseModel, transaction_id: str) -> dict[str, Any]:
    return {**body.model_dump(exclude_none=True), "transaction_id": transaction_id}


def _replacing(node: Node, body: BaseModel, transaction_id: str) -> dict[str, Any]:
    return {**_as_sent(node, body, transaction_id), "replace_existing": True}


def _area_routes(facade: Facade) -> list[Route]:
    base = "/external-connection/api/{sim}/{area}/"
    table: list[tuple[str, str, type[BaseModel], Callable[..., Response]]] = [
        ("register/", "POST", m.Body, facade.area_command("register_participant", _named)),
        ("unregister/", "POST", m.Body, facade.area_command("unregister_participant", _named)),
        # Forecast channels take exactly {energy_forecast|energy_measurement, transaction_id}
        # (REDIS.md 9); the snake_case spellings are accepted too.
        ("set-energy-forecast/", "POST", m.Forecast, facade.area_command("set_energy_forecast", _as_sent, False)),
        ("set_energy_forecast/", "POST", m.Forecast, facade.area_command("set_energy_forecast", _as_sent, False)),
        ("set-energy-measurement/", "POST", m.Measurement,
         facade.area_command("set_energy_measurement", _as_sent, False)),
        ("set_energy_measurement/", "POST", m.Measurement,
         facade.area_command("set_energy_measurement", _as_sent, False)),
        ("set-live-generation/", "POST", m.Body, facade.not_supported("Live generation data")),
        ("set-scm-timeseries-and-member-data/", "POST", m.Body, facade.not_supported("SCM data")),
        ("grid-fee/", "POST", m.GridFee, facade.area_command("grid_fees", _as_sent, True)),
        ("dso-market-stats", "GET", m.Body, facade.area_command("dso_market_stats", _as_sent, True)),
        # Legacy direct endpoints of older SDKs (REST.md 3.6).
        ("offer/", "POST", m.Order, facade.area_command("offer", _as_sent, False)),
        ("bid/", "POST", m.Order, facade.area_command("bid", _as_sent, False)),
        ("update_offer/", "POST", m.Order, facade.area_command("offer", _replacing, False)),
        ("update_bid/", "POST", m.Order, facade.area_command("bid", _replacing, False)),
        ("delete-offer/", "POST", m.Order, facade.area_command("delete_offer", _as_sent, False)),
        ("delete-bid/", "POST", m.Order, facade.area_command("delete_bid", _as_sent, False)),
        ("list-offers", "GET", m.Body, facade.area_command("list_offers", _as_sent, False)),
        ("list-bids", "GET", m.Body, facade.area_command("list_bids", _as_sent, False)),
        ("device-stats", "GET", m.Body, facade.area_command("device_info", _as_sent, False)),
    ]
    return [Route(base + path, facade.endpoint(model, work), methods=[method])
            for path, method, model, work in table]


def create_app(relay: ExchangeRelay, users: Users, issuer: TokenIssuer, limiter: RateLimiter) -> Starlette:
    facade = Facade(relay, users, issuer, limiter)
    aggregator_api = "/external-connection/aggregator-api/{sim}/"
    routes = [
        Route("/api-token-auth/", facade.login, methods=["POST"]),
        Route("/healthz", facade.health, methods=["GET"]),
        Route("/graphql/", facade.endpoint(m.Body, facade.graphql), methods=["POST"]),
        Route("/external-connection/configurations/{sim}/registry", facade.endpoint(m.Body, facade.registry),
              methods=["GET"]),
        Route(aggregator_api + "list-aggregators/", facade.endpoint(m.Body, facade.list_aggregators), methods=["GET"]),
        Route(aggregator_api + "create-aggregator/", facade.endpoint(m.CreateAggregator, facade.create_aggregator),
              methods=["POST"]),
        Route(aggregator_api + "delete-aggregator/", facade.endpoint(m.AggregatorRef, facade.delete_aggregator),
              methods=["POST"]),
        Route(aggregator_api + "select-aggregator/", facade.endpoint(m.Selection, facade.select_aggregator),
              methods=["POST"]),
        Route(aggregator_api + "unselect-aggregator/", facade.endpoint(m.Selection, facade.unselect_aggregator),
              methods=["POST"]),
        Route(aggregator_api + "batch-commands/", facade.endpoint(m.Batch, facade.batch_commands), methods=["POST"]),
        Route("/external-connection/api/{sim}/set-scm-global-data/",
              facade.endpoint(m.Body, facade.not_supported("SCM global data")), methods=["POST"]),
        *_area_routes(facade),
        WebSocketRoute("/external-ws/{sim}/aggregator/{agg}/", facade.aggregator_socket),
        WebSocketRoute("/external-ws/{sim}/{area}/", facade.area_socket),
    ]
    return Starlette(routes=routes)
