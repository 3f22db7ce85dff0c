"""The websockets (REST.md 4): binary JSON frames, server to client only.

A socket is checked like a REST call (token, simulation, aggregator or area ownership) and
refused with the same HTTP status and JSON body. It is closed when its token expires: the
client reconnects with a fresh token, as it does after any drop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gsy_e_sdk.wire import rest_paths as paths
from gsy_local_exchange.http.bodies import ApiError
from gsy_local_exchange.http.core import Facade
from gsy_local_exchange.http.hub import Subscriber, WebsocketHub
from gsy_local_exchange.http.relay import ExchangeUnavailable, aggregator_key, area_key, encode

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


class Sockets:
    def __init__(self, facade: Facade) -> None:
        self.facade = facade

    async def _accept(self, websocket: WebSocket, check: Callable[[str], Any]) -> tuple[Any, float] | None:
        """Authenticate the handshake: (what ``check(user)`` found, token expiry), or refuse."""
        try:
            identity = self.facade.auth.identity(websocket.headers.get("authorization"))
            return await run_in_threadpool(check, identity.user), identity.expires_at
        except ApiError as exc:
            await _deny(websocket, exc.status, exc.body)
        except ExchangeUnavailable as exc:
            await _deny(websocket, 503, {"error": str(exc)})
        return None

    async def aggregator(self, websocket: WebSocket) -> None:
        params = websocket.path_params

        def check(user: str) -> list[str]:
            state = self.facade.simulation(params["sim"])
            record = self.facade.own_aggregator(state, user, params["agg"])
            self.facade.relay.watch_aggregator(record.uuid)
            return state.devices(record.uuid)

        accepted = await self._accept(websocket, check)
        if accepted is None:
            return
        devices, expires_at = accepted
        # A reconnecting aggregator learns its devices again: selections made while it was away
        # (or before a facade restart) would otherwise never reach it.
        prelude = [encode({"event": "selected_by_device", "device_uuid": device}) for device in devices]
        subscriber = self.facade.hub.attach(aggregator_key(params["agg"]), prelude)
        await websocket.accept()
        await _pump(websocket, subscriber, self.facade.hub, expires_at)

    async def area(self, websocket: WebSocket) -> None:
        params = websocket.path_params

        def check(user: str) -> str:
            state = self.facade.simulation(params["sim"])
            node, _ = self.facade.usable_area(state, user, params["area"])
            self.facade.relay.watch_area(node)
            return node.uuid

        accepted = await self._accept(websocket, check)
        if accepted is None:
            return
        area_uuid, expires_at = accepted
        subscriber = self.facade.hub.attach(area_key(area_uuid))
        await websocket.accept()
        await _pump(websocket, subscriber, self.facade.hub, expires_at)


async def _deny(websocket: WebSocket, status: int, body: dict[str, Any]) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse(body, status_code=status))
    else:
        await websocket.close(code=POLICY_VIOLATION, reason=body.get("error", "")[:120])


async def _pump(websocket: WebSocket, subscriber: Subscriber, hub: WebsocketHub, expires_at: float) -> None:
    """Send queued frames until the client leaves, falls too far behind or its token expires."""

    async def send() -> None:
        while True:
            frame = await subscriber.next()
            if frame is None:
                await websocket.close(code=TRY_AGAIN_LATER, reason="client too slow")
                return
            await websocket.send_bytes(frame)

    async def expire() -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await websocket.close(code=POLICY_VIOLATION, reason="token expired")

    tasks = [asyncio.create_task(_until_closed(send())), asyncio.create_task(_until_closed(expire()))]
    try:
        while True:  # the client never sends; this only notices it leaving
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        for task in tasks:
            task.cancel()
        hub.detach(subscriber)


async def _until_closed(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work``; the socket closing under it (either side) ends it quietly."""
    try:
        await work
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


def socket_routes(facade: Facade) -> list[WebSocketRoute]:
    sockets = Sockets(facade)
    return [
        WebSocketRoute(paths.WEBSOCKET_ROOT + paths.WEBSOCKET_AGGREGATOR, sockets.aggregator),
        WebSocketRoute(paths.WEBSOCKET_ROOT + paths.WEBSOCKET_AREA, sockets.area),
    ]
