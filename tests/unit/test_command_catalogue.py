"""One catalogue of area commands (``gsy_e_sdk.wire.catalogue``), and everything that names a
command agrees with it: the SDK's command names, the direct-mode channels, the exchange's handler
tables and the facade's REST routes. A command added in one place and forgotten in another
fails here. Each command's arguments are one model, and the SDK's builder, the exchange and the
facade accept and refuse the same arguments through it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from pydantic import ValidationError
from starlette.routing import Route

from gsy_e_sdk.commands import ClientCommandBuffer
from gsy_e_sdk.enums import command_enum_to_command_name_dict
from gsy_e_sdk.wire import catalogue, channels
from gsy_e_sdk.wire import command_params as p
from gsy_e_sdk.wire.catalogue import BY_NAME, CATALOGUE, CommandSpec, Target
from gsy_e_sdk.wire.redis_connection import RedisConnection
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.commands import CommandExecutor
from gsy_local_exchange.http import models as m
from gsy_local_exchange.http.app import create_app
from gsy_local_exchange.http.bodies import ApiError, parse_body
from gsy_local_exchange.http.hub import WebsocketHub
from gsy_local_exchange.http.rate_limit import RateLimiter
from gsy_local_exchange.http.relay import ExchangeRelay
from gsy_local_exchange.http.tokens import TokenIssuer
from gsy_local_exchange.http.users import Users
from gsy_local_exchange.scenario import parse_scenario
from gsy_local_exchange.simulation import Simulation

AREA_PREFIX = "/external-connection/api/{sim}/{area}/"


def test_names_are_unique_and_the_sdk_names_exactly_these():
    names = [spec.name for spec in CATALOGUE]
    assert len(names) == len(set(names))
    assert sorted(command_enum_to_command_name_dict.values()) == sorted(names)


def test_direct_channels_come_from_the_catalogue():
    direct = {*channels.ASSET_DIRECT_COMMANDS, *channels.MARKET_DIRECT_COMMANDS, *channels.SELF_ANSWERED_COMMANDS}
    assert direct == set(catalogue.BY_NAME)
    assert set(channels.MARKET_DIRECT_COMMANDS) == set(catalogue.names(Target.MARKET))
    for spec in CATALOGUE:
        response = channels.area_command_response("p", spec.name)
        assert response == (f"p/{spec.name}" if spec.self_answered else f"p/response/{spec.name}")


def test_the_exchange_handles_exactly_the_catalogue():
    executor = CommandExecutor(engine=None)  # the handler tables only; no engine is touched
    assert set(executor._asset_handlers) == set(catalogue.names(Target.ASSET))
    assert set(executor._market_handlers) == set(catalogue.names(Target.MARKET))


def test_the_facade_serves_every_command_at_its_rest_path():
    relay = ExchangeRelay(RedisConnection("redis://127.0.0.1:9"), WebsocketHub())  # never connects here
    app = create_app(relay, Users({"u": "p"}), TokenIssuer("s" * 32), RateLimiter(0))
    served = {
        (route.path, method) for route in app.routes if isinstance(route, Route) for method in route.methods or ()
    }
    missing = [spec.name for spec in CATALOGUE if (AREA_PREFIX + spec.rest_path, spec.rest_method) not in served]
    assert missing == []


# ---------------------------------------------------------------------------------------------- arguments
# One model of every command's arguments (gsy_e_sdk/wire/command_params.py): the SDK's builder,
# the exchange's handler and the facade's route accept and refuse the same arguments.

SLOT = "2026-06-01T12:00"  # the spot slot of the simulation below
NEXT, LAST = "2026-06-01T12:15", "2026-06-01T11:45"
NAN, INF = float("nan"), float("inf")

GOOD: dict[str, list[dict]] = {  # accepted by all three (on an asset of a kind that takes the command)
    "offer": [
        {"energy": 0.01, "price": 0.5},
        {"energy": 0.02, "price": 1, "replace_existing": False, "time_slot": None},
        {"energy": 0.01, "price": 0, "time_slot": SLOT},
        {"energy": 0.01, "price": 0.5, "attributes": {"energy_type": "PV"}, "requirements": [{"price": 1}]},
    ],
    "bid": [
        {"energy": 0.001, "price": 0.0001},
        {"energy": 0.002, "price": 0, "replace_existing": False, "time_slot": SLOT},
        {"energy": 0.01, "price": 0.5, "requirements": [{"trading_partners": ["x"]}], "attributes": {}},
    ],
    "delete_offer": [{}, {"offer": None}, {"offer_id": None, "time_slot": None}, {"time_slot": SLOT}],
    "delete_bid": [{}, {"bid": None, "bid_id": None}, {"time_slot": SLOT}],
    "list_offers": [{}, {"time_slot": None}, {"time_slot": SLOT}],
    "list_bids": [{}, {"time_slot": SLOT}],
    "device_info": [{}],
    "set_energy_forecast": [{"energy_forecast": {NEXT: 0.2}}, {"energy_forecast": {NEXT: 0, "2026-06-01T12:30": 1}}],
    "set_energy_measurement": [{"energy_measurement": {LAST: 0.1}}],
    # fee_percent is valid too, but this exchange's fee type is constant: its refusal is configuration.
    "grid_fees": [{"data": {"fee_const": 2}}, {"fee_const": 0}, {"data": {"fee_const": p.MAX_CONSTANT_FEE}}],
    "dso_market_stats": [{}, {"data": {}}],
}
BASE = {"grid_fees": {}}  # what a generated bad value goes into, when not the command's first good sample
BAD_VALUES = {  # per field type of command_params, values every place must refuse
    p.Energy: [0, -1, "1", True, NAN, INF, None, 10**400],
    p.Price: [-0.01, "1", False, NAN, -INF, None, 10**400],
    p.Flag: [1, "yes", None],
    p.TimeSlot: ["tomorrow", 5, "", ["2026-06-01T12:00"]],
    p.OrderId: ["", " ", 3, ["id"]],
    p.EnergySeries: [{}, [], "x", {"soon": 1}, {NEXT: -1}, {NEXT: "1"}, {NEXT: NAN}, {NEXT: True}],
    p.ConstantFee: [-1, p.MAX_CONSTANT_FEE + 1, "1", NAN],
    p.PercentFee: [-1, 101, "1", INF],
    p.Attributes: [["x"], "x"],
    p.Requirements: [{"a": 1}, [1], "x"],
}
BAD_EXTRA: dict[str, list[dict]] = {  # refusals the field types do not generate
    "offer": [{"energy": 1e-300, "price": 1e300}],  # an infinite rate
    "grid_fees": [{"fee_const": 1, "fee_percent": 1}, {"data": 5}, {"data": {"fee_const": 1}, "fee_const": 1}],
    "dso_market_stats": [{"data": "x"}, {"data": None}],
}


def _bad_samples(spec: CommandSpec) -> list[dict]:
    """Generated from the model: each field with each bad value of its type, each required field
    left out, an unknown key; plus the hand-written cases."""
    base = BASE.get(spec.name, GOOD[spec.name][0])
    samples = [{**base, "surprise": 1}]
    for name, field in spec.params.model_fields.items():
        kind = (
            next(alias for alias in BAD_VALUES if field.metadata == list(alias.__metadata__))
            if field.metadata
            else None
        )
        samples += [{**base, name: value} for value in BAD_VALUES.get(kind, ["x", 1])]
        if field.is_required():
            samples.append({key: value for key, value in base.items() if key != name})
    return samples + BAD_EXTRA.get(spec.name, [])


def _scenario_with_a_battery() -> Simulation:
    """external_devices.json plus a half-full battery in House 2 (storage takes attributes and both
    sides), at noon so the PV has energy, in its first slot, the areas used here selected by an
    aggregator."""
    path = Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios" / "external_devices.json"
    raw = json.loads(path.read_text())
    house_2 = next(child for child in raw["children"] if child["name"] == "House 2")
    house_2["children"].append({"name": "battery", "type": "Storage", "initial_soc": 50, "battery_capacity_kWh": 20})
    scenario = parse_scenario(raw, path.parent)
    start = datetime(2026, 6, 1, 12)
    clock = SimulationClock(start, scenario.settings.slot_length, scenario.settings.tick_length, timedelta(hours=1))
    simulation = Simulation(scenario, clock)
    simulation.handle(channels.AGGREGATOR_COMMANDS, {"type": "CREATE", "name": "a", "transaction_id": "agg"})
    for area in simulation.engine.areas.values():  # controlled: no template strategy places orders for them
        if area.name in ("pv", "load", "forecast-measurement-load", "battery", "House 2"):
            simulation.handle(
                channels.AGGREGATOR_COMMANDS,
                {"type": "SELECT", "aggregator_uuid": "agg", "device_uuid": area.uuid, "transaction_id": area.name},
            )
    simulation.step()
    return simulation


def _target(name: str, sample: dict) -> str:
    if name in ("offer", "bid") and {"attributes", "requirements"} & set(sample):
        return "battery"  # PV and load refuse the keys (REDIS.md 6.2)
    return {
        "offer": "pv",
        "delete_offer": "pv",
        "list_offers": "pv",
        "device_info": "pv",
        "bid": "load",
        "delete_bid": "load",
        "list_bids": "load",
        "set_energy_forecast": "forecast-measurement-load",
        "set_energy_measurement": "forecast-measurement-load",
    }.get(name, "House 2")


def _exchange_accepts(name: str, sample: dict) -> bool:
    simulation = _scenario_with_a_battery()  # a fresh one: no sample sees another's orders
    area = next(area for area in simulation.engine.areas.values() if area.name == _target(name, sample))
    response = simulation.executor.execute(area, {"type": name, **sample}, "tx")
    assert response["status"] in ("ready", "error") and (response["status"] == "ready" or response["error_message"])
    return response["status"] == "ready"


def _facade_accepts(name: str, sample: dict) -> bool:
    try:
        parse_body(json.dumps(sample).encode(), m.COMMAND_BODIES[name])
    except ApiError as refused:
        assert refused.status == 400 and refused.body["error"].startswith("Invalid field")
        return False
    return True


def _builder_call(buffer: ClientCommandBuffer, name: str, sample: dict) -> Callable[[], object] | None:
    """The builder call that would send ``sample``; None when no call can (the SDK never sends it)."""
    if name == "grid_fees":
        fees = sample.get("data", sample)
        if ("data" in sample and len(sample) > 1) or not isinstance(fees, dict) or len(fees) != 1:
            return None
        [(key, value)] = fees.items()
        method = {"fee_const": buffer.grid_fees, "fee_percent": buffer.change_grid_fees_percent}.get(key)
        return None if method is None else partial(method, "market", value)
    if name == "dso_market_stats":
        return partial(buffer.last_market_dso_stats, "market") if sample in ({}, {"data": {}}) else None
    ids = [sample[key] for key in ("offer", "offer_id", "bid", "bid_id") if key in sample]
    if any(other != ids[0] for other in ids):  # the builder sends one id under both keys
        return None
    arguments = {BUILDER_ARGUMENTS.get(key, key): value for key, value in sample.items()}
    return partial(getattr(buffer, BUILDER[name]), "asset", **arguments)


def _builder_accepts(name: str, sample: dict) -> bool | None:
    """Whether the SDK's builder method for the command takes these arguments (None: no call can express them)."""
    buffer = ClientCommandBuffer()
    call = _builder_call(buffer, name, sample)
    if call is None:
        return None
    try:
        call()
    except (ValueError, TypeError):  # TypeError: a missing or unknown argument
        assert buffer.buffer_length == 0
        return False
    [[command]] = buffer.take_batch().values()
    BY_NAME[name].params.model_validate({key: value for key, value in command.items() if key != "type"})
    return True


BUILDER_ARGUMENTS = {  # wire name -> the builder's argument
    "offer": "offer_id",
    "bid": "bid_id",
    "energy_forecast": "energy_forecast_kWh",
    "energy_measurement": "energy_measurement_kWh",
}
BUILDER = {  # command -> builder method
    "offer": "offer_energy",
    "bid": "bid_energy",
    "delete_offer": "delete_offer",
    "delete_bid": "delete_bid",
    "list_offers": "list_offers",
    "list_bids": "list_bids",
    "device_info": "asset_info",
    "set_energy_forecast": "set_energy_forecast",
    "set_energy_measurement": "set_energy_measurement",
}


def test_every_command_has_its_model_and_the_facade_a_body_of_it():
    for spec in CATALOGUE:
        assert issubclass(spec.params, p.CommandParams) and spec.params.command == spec.name
        body = m.COMMAND_BODIES[spec.name]
        assert issubclass(body, spec.params) and "transaction_id" in body.model_fields
    assert set(m.COMMAND_BODIES) == set(BY_NAME) and set(GOOD) == set(BY_NAME)


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.name)
def test_builder_exchange_and_facade_accept_and_refuse_the_same_arguments(spec):
    cases = [(sample, True) for sample in GOOD[spec.name]] + [(sample, False) for sample in _bad_samples(spec)]
    disagreements = []
    for sample, expected in cases:
        verdicts = {
            "model": _accepts_model(spec, sample),
            "exchange": _exchange_accepts(spec.name, sample),
            "facade": _facade_accepts(spec.name, sample),
            "builder": _builder_accepts(spec.name, sample),
        }
        if any(verdict is not None and verdict != expected for verdict in verdicts.values()):
            disagreements.append((sample, verdicts))
    assert disagreements == []  # (sample, verdicts); GOOD samples should be accepted, generated ones refused


def _accepts_model(spec: CommandSpec, sample: dict) -> bool:
    try:
        spec.params.model_validate(sample)
    except ValidationError:
        return False
    return True
