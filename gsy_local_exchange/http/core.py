"""What every route of the facade shares: authentication, throttling, bodies, simulation, areas.

Handlers authenticate, rate-limit and validate on the event loop, then do their Redis work in
the thread pool (``run_in_threadpool``) so a slow exchange never blocks other sockets.

Who may use an area (issue 14.1): an area selected by an aggregator belongs to that
aggregator's owner, an area registered through the facade to the user who registered it.
Everybody else gets 404 for it, exactly as for an area that does not exist, so nothing about
other users' assets is disclosed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_local_exchange.descriptor import Node
from gsy_local_exchange.http.auth import Authenticator
from gsy_local_exchange.http.bodies import ApiError, parse_body, read_body
from gsy_local_exchange.http.limits import FacadeLimits
from gsy_local_exchange.http.relay import ExchangeRelay, ExchangeUnavailable
from gsy_local_exchange.http.state import AggregatorRecord, FacadeState

logger = logging.getLogger(__name__)
limited_log = RateLimitedLog(logger)

Work = Callable[[str, dict, Any], Response]


class Facade:
    def __init__(self, relay: ExchangeRelay, auth: Authenticator, limits: FacadeLimits) -> None:
        self.relay = relay
        self.hub = relay.hub
        self.auth = auth
        self.limits = limits

    def endpoint(
        self, model: type[BaseModel] | None, work: Work, body_limit: int | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, throttle, validate, then run ``work(user, params, body)`` off the loop."""
        limit = body_limit or self.limits.max_body_bytes

        async def handle(request: Request) -> Response:
            try:
                user = self.auth.identity(request.headers.get("authorization")).user
                self.auth.throttle(user)
                body = parse_body(await read_body(request, limit), model) if model is not None else None
                return await run_in_threadpool(work, user, request.path_params, body)
            except ApiError as exc:
                return exc.response()
            except ExchangeUnavailable as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)
            except Exception:  # noqa: BLE001 - one failing request must not flood the log
                limited_log.error("%s %s failed", request.method, request.url.path, exc_info=True)
                return JSONResponse({"error": "Internal error."}, status_code=500)

        return handle

    # ------------------------------------------------------------------ lookups
    def simulation(self, simulation_id: str) -> FacadeState:
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
            raise _area_not_found(area_uuid)
        if node.prefix is None:
            raise ApiError(403, f"Area {node.name} ({area_uuid}) does not accept external connections.")
        return node

    def usable_area(self, state: FacadeState, user: str, area_uuid: str) -> tuple[Node, str | None]:
        """The area ``user`` may use, and the uuid of the aggregator controlling it (or None)."""
        node = self._area(area_uuid)
        controller, aggregator_uuid = state.controller(node.uuid)
        if controller is not None and controller != user:
            raise _area_not_found(area_uuid)
        return node, aggregator_uuid

    @staticmethod
    def own_aggregator(state: FacadeState, user: str, aggregator_uuid: str) -> AggregatorRecord:
        record = state.aggregator(aggregator_uuid)
        if record is None or record.user != user:  # another user's aggregator is not disclosed
            raise ApiError(404, f"Aggregator {aggregator_uuid} not found.")
        return record


def _area_not_found(area_uuid: str) -> ApiError:
    return ApiError(404, f"Area {area_uuid} not found in this simulation.")
