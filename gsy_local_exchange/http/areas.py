"""Asset and market endpoints (REST.md 3.1, 3.2, 3.6): acknowledged at once, answered on the socket.

Each one checks who may use the area (``Facade.usable_area``). Registering through the facade
makes the caller the area's direct user until it unregisters; the legacy direct orders are
refused while an aggregator controls the area (REDIS.md 9: direct mode is for areas no
aggregator controls), so they never race the aggregator's own orders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response
from starlette.routing import Route

from gsy_e_sdk.wire import catalogue
from gsy_e_sdk.wire import rest_paths as paths
from gsy_e_sdk.wire.catalogue import CATALOGUE, CommandSpec, Target
from gsy_e_sdk.wire.times import format_slot
from gsy_local_exchange.descriptor import Node
from gsy_local_exchange.http import models as m
from gsy_local_exchange.http.bodies import ApiError, json_response
from gsy_local_exchange.http.core import Facade
from gsy_local_exchange.http.relay import area_key, encode
from gsy_local_exchange.http.state import FacadeState

ACCEPTED = "accepted"
NOT_SIMULATED = "accepted; the local exchange does not simulate this data, it is acknowledged and not used"
Payload = Callable[[Node, Any, str], dict[str, Any]]


class Kind(Enum):
    ASSET = "an asset"
    MARKET = "a market"
    ANY = "an area"


def accepted(transaction_id: str, **extra: Any) -> Response:
    return json_response({"status": ACCEPTED, "transaction_id": transaction_id, **extra})


class AreaCommands:
    def __init__(self, facade: Facade) -> None:
        self.facade = facade

    def _usable(self, user: str, params: dict, kind: Kind, name: str) -> tuple[FacadeState, Node, str | None]:
        state = self.facade.simulation(params["sim"])
        node, aggregator_uuid = self.facade.usable_area(state, user, params["area"])
        if kind is not Kind.ANY and node.is_market != (kind is Kind.MARKET):
            raise ApiError(400, f"Area {node.name} is not {kind.value}; {name} needs {kind.value}.")
        return state, node, aggregator_uuid

    def command(
        self, name: str, payload: Payload, kind: Kind = Kind.ANY, direct_order: bool = False
    ) -> Callable[[str, dict, Any], Response]:
        """An async command (REST.md 2): acknowledged now, answered on the area's websocket."""

        def work(user: str, params: dict, body: BaseModel | None) -> Response:
            _, node, aggregator_uuid = self._usable(user, params, kind, name)
            if direct_order and aggregator_uuid is not None:
                raise ApiError(
                    409,
                    f"Area {node.name} is controlled by aggregator {aggregator_uuid}; "
                    "send its orders in that aggregator's batch-commands.",
                )
            transaction_id = self.facade.relay.transaction_id(body.model_dump() if body else {})
            self.facade.relay.area_request(node, name, payload(node, body, transaction_id))
            return accepted(transaction_id)

        return work

    def register(self, user: str, params: dict, body: m.Body) -> Response:
        state, node, _ = self._usable(user, params, Kind.ANY, "register")
        if not state.claim(node.uuid, user):  # lost a race with another user's register
            raise ApiError(404, f"Area {node.uuid} not found in this simulation.")
        transaction_id = self.facade.relay.transaction_id(body.model_dump())
        self.facade.relay.area_request(node, "register_participant", _named(node, body, transaction_id))
        return accepted(transaction_id)

    def unregister(self, user: str, params: dict, body: m.Body) -> Response:
        state, node, _ = self._usable(user, params, Kind.ANY, "unregister")
        transaction_id = self.facade.relay.transaction_id(body.model_dump())
        self.facade.relay.area_request(node, "unregister_participant", _named(node, body, transaction_id))
        state.release_claim(node.uuid, user)
        return accepted(transaction_id)

    def energy(self, name: str, field: str) -> Callable[[str, dict, Any], Response]:
        """Forecasts and measurements: the ``{slot: kWh}`` map as sent, or ``energy_Wh`` for one slot.

        REDIS.md 6.5 and 9: the exchange runs the command at its next tick and applies it when the
        following slot starts: a forecast to the slots from that one on, a measurement to the slots
        before it. So ``energy_Wh`` forecasts the slot after the running one (after the first slot
        before the run starts, as the first tick already runs inside it) and measures the running one.
        """

        def work(user: str, params: dict, body: Any) -> Response:  # a model of models._energy_series
            state, node, _ = self._usable(user, params, Kind.ASSET, name)
            transaction_id = self.facade.relay.transaction_id(body.model_dump())
            series = getattr(body, field)
            if series is None:
                series = {self._slot_for(state, forecast=field == "energy_forecast"): body.energy_Wh / 1000}
            self.facade.relay.area_request(node, name, {field: series, "transaction_id": transaction_id})
            return accepted(transaction_id)

        return work

    def _slot_for(self, state: FacadeState, forecast: bool) -> str:
        descriptor = self.facade.relay.descriptor()
        running = state.spot_slot_index()
        if forecast:
            index = (running or 0) + 1
        elif running is None:
            raise ApiError(
                409,
                "No slot has started yet, so there is nothing to measure; send energy_measurement with explicit slots.",
            )
        else:
            index = running
        start = datetime.fromisoformat(descriptor.start_date)
        return format_slot(start + index * timedelta(minutes=descriptor.slot_length_minutes))

    def live_generation(self, user: str, params: dict, body: m.LiveGeneration) -> Response:
        """Acknowledged and answered like the hosted exchange; the local one has no live data feed."""
        _, node, _ = self._usable(user, params, Kind.ASSET, "set-live-generation")
        transaction_id = self.facade.relay.transaction_id(body.model_dump())
        self.facade.hub.deliver(
            area_key(node.uuid),
            encode(
                {
                    "command": "set-live-generation",
                    "status": "ready",
                    "transaction_id": transaction_id,
                    "area_uuid": node.uuid,
                }
            ),
            hold=True,
        )
        return accepted(transaction_id)

    def scm_asset_data(self, user: str, params: dict, body: m.Body) -> Response:
        self._usable(user, params, Kind.ANY, "set-scm-timeseries-and-member-data")
        return accepted(self.facade.relay.transaction_id(body.model_dump()), message=NOT_SIMULATED)

    def scm_global_data(self, _user: str, params: dict, body: m.Body) -> Response:
        self.facade.simulation(params["sim"])
        return accepted(self.facade.relay.transaction_id(body.model_dump()), message=NOT_SIMULATED)


def _named(node: Node, _body: Any, transaction_id: str) -> dict[str, Any]:
    return {"name": node.prefix, "transaction_id": transaction_id}


def _as_sent(_node: Node, body: BaseModel, transaction_id: str) -> dict[str, Any]:
    return {**body.model_dump(exclude_none=True), "transaction_id": transaction_id}


def _replacing(node: Node, body: BaseModel, transaction_id: str) -> dict[str, Any]:
    return {**_as_sent(node, body, transaction_id), "replace_existing": True}


def area_routes(facade: Facade) -> list[Route]:
    areas = AreaCommands(facade)

    def order(command: str, payload: Payload = _as_sent) -> Callable[[str, dict, Any], Response]:
        return areas.command(command, payload, Kind.ASSET, direct_order=True)

    def work_of(spec: CommandSpec) -> Callable[..., Response]:
        if spec.self_answered:  # forecasts and measurements: {"energy_<kind>": {slot: kWh}}
            return areas.energy(spec.name, spec.name.removeprefix("set_"))
        if spec.target is Target.MARKET:
            return areas.command(spec.name, _as_sent, Kind.MARKET)
        return order(spec.name)

    # The catalogue's commands at their paths (REST.md 3.1, 3.2; the direct order endpoints of
    # older SDKs, REST.md 3.6), each with the body model of its arguments.
    works = {spec.name: work_of(spec) for spec in CATALOGUE}
    table: list[tuple[str, str, type[BaseModel], Callable[..., Response]]] = [
        (spec.rest_path, spec.rest_method, m.COMMAND_BODIES[spec.name], works[spec.name]) for spec in CATALOGUE
    ]
    table += [
        (paths.REGISTER, "POST", m.Body, areas.register),
        (paths.UNREGISTER, "POST", m.Body, areas.unregister),
        # Forecast channels take exactly {energy_forecast|energy_measurement, transaction_id}
        # (REDIS.md 9); the snake_case spellings are accepted too.
        *((f"{name}/", "POST", m.COMMAND_BODIES[name], works[name]) for name in catalogue.names(Target.ASSET, True)),
        (paths.LIVE_GENERATION, "POST", m.LiveGeneration, areas.live_generation),
        (paths.SCM_MEMBER_DATA, "POST", m.Body, areas.scm_asset_data),
        ("update_offer/", "POST", m.COMMAND_BODIES["offer"], order("offer", _replacing)),
        ("update_bid/", "POST", m.COMMAND_BODIES["bid"], order("bid", _replacing)),
    ]
    routes = [
        Route(paths.AREA + path, facade.endpoint(model, work), methods=[method]) for path, method, model, work in table
    ]
    routes.append(
        Route(
            paths.SIMULATION + paths.SCM_GLOBAL_DATA,
            facade.endpoint(m.Body, areas.scm_global_data),
            methods=["POST"],
        )
    )
    return routes
