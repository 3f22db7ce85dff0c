"""The facade's routes (REST.md 1, 3, 4) on Starlette.

Why Starlette on uvicorn: a small, well-kept ASGI toolkit with first-class websockets (including
HTTP denial responses during the handshake, which we use for 401s) and no framework magic; the
whole surface here is ~30 routes with pydantic bodies, so FastAPI's extra layer buys nothing.

The routes live by topic: ``auth`` (login), ``areas`` (asset and market commands),
``aggregators`` (aggregators, registry), ``sockets`` (websockets), and here health and GraphQL.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gsy_e_sdk.wire import rest_paths as paths
from gsy_local_exchange.http import graphql_api
from gsy_local_exchange.http import models as m
from gsy_local_exchange.http.aggregators import aggregator_routes
from gsy_local_exchange.http.areas import area_routes
from gsy_local_exchange.http.auth import Authenticator
from gsy_local_exchange.http.bodies import ApiError, json_response
from gsy_local_exchange.http.core import Facade
from gsy_local_exchange.http.limits import FacadeLimits
from gsy_local_exchange.http.rate_limit import RateLimiter
from gsy_local_exchange.http.registry import scenario_tree
from gsy_local_exchange.http.relay import ExchangeRelay, ExchangeUnavailable
from gsy_local_exchange.http.sockets import socket_routes
from gsy_local_exchange.http.state import FacadeState
from gsy_local_exchange.http.tokens import TokenIssuer
from gsy_local_exchange.http.users import Users


class Service:
    """Health and GraphQL: the routes that are about the facade and the grid, not one area."""

    def __init__(self, facade: Facade) -> None:
        self.facade = facade

    async def health(self, _request: Request) -> Response:
        try:
            descriptor = await run_in_threadpool(self.facade.relay.descriptor)
        except ExchangeUnavailable as exc:
            return JSONResponse({"status": "waiting", "error": str(exc)}, status_code=503)
        problem = await run_in_threadpool(self.facade.relay.reader_problem)
        if problem:
            return JSONResponse({"status": "unhealthy", "error": problem}, status_code=503)
        return json_response({"status": "ok", "simulation_id": descriptor.simulation_id})

    def graphql(self, user: str, _params: dict, body: m.Body) -> Response:
        data = body.model_dump()
        query = data.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "Invalid field 'query': a GraphQL query string is required.")
        variables = data.get("variables") if isinstance(data.get("variables"), dict) else None
        descriptor = self.facade.relay.descriptor()
        state = FacadeState(self.facade.relay.connection.redis, descriptor.run_id)

        def configuration(config_uuid: str) -> dict[str, Any] | None:
            if config_uuid != descriptor.simulation_id:
                return None
            return {
                "uuid": descriptor.simulation_id,
                "name": descriptor.root.name,
                "serialized": _serialized_scenario(self.facade.relay, descriptor.run_id),
            }

        def aggregators() -> list[dict[str, Any]]:
            return [
                {
                    "configUuid": descriptor.simulation_id,
                    "name": r.name,
                    "devicesList": [{"deviceUuid": device} for device in state.devices(r.uuid)],
                }
                for r in state.aggregators(user)
            ]

        return json_response(
            graphql_api.execute(
                query,
                variables,
                data.get("operationName"),
                configuration,
                aggregators,
                self.facade.limits.graphql_introspection,
            )
        )


@lru_cache(maxsize=2)
def _serialized_scenario(relay: ExchangeRelay, run_id: str) -> str:
    """The scenario as readConfiguration serves it, built once per run (it is the same for all)."""
    del run_id  # part of the cache key only: the grid of a run never changes
    return json.dumps(scenario_tree(relay.descriptor().root))


def create_app(
    relay: ExchangeRelay, users: Users, issuer: TokenIssuer, limiter: RateLimiter, limits: FacadeLimits = FacadeLimits()
) -> Starlette:
    auth = Authenticator(users, issuer, limiter)
    facade = Facade(relay, auth, limits)
    service = Service(facade)
    routes = [
        Route(paths.TOKEN, auth.login, methods=["POST"]),
        Route("/healthz", service.health, methods=["GET"]),
        Route(paths.GRAPHQL, facade.endpoint(m.Body, service.graphql), methods=["POST"]),
        *aggregator_routes(facade),
        *area_routes(facade),
        *socket_routes(facade),
    ]
    return Starlette(routes=routes)
