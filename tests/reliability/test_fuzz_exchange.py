"""Fuzzing the exchange's input handling (GitHub issue 8), pure: no Redis, no threads.

A :class:`Simulation` of ``external_devices.json`` gets an aggregator that selects ``pv``,
``load``, ``forecast-measurement-load`` and the market ``House 2`` through
:meth:`Simulation.handle` on the real channels; then hypothesis feeds malformed payloads on
every channel the exchange serves and malformed commands inside batches, and the tick runs.
Properties: nothing raises; every batch with a valid envelope is answered, each malformed
command with its own ``status: error`` entry and a non-empty message, while well-formed
commands of the same batch succeed; a malformed command changes nothing; the engine's order
books stay consistent (finite positive energies, finite non-negative rates and prices, every
order indexed in exactly its asset and the markets of its path).

Generated inputs per run (hypothesis ``max_examples``; one example = one generated input set,
usually several payloads or commands):

=====================================================  ======
test_batches_mix_malformed_and_well_formed_commands     3,000
test_malformed_commands_change_nothing                  1,500
test_malformed_batch_envelopes                          1,500
test_malformed_aggregator_commands                      1,500
test_garbage_on_every_area_channel                      1,500
test_malformed_direct_mode_requests                     1,000
test_decode_payload_never_raises                        1,000
=====================================================  ======
total                                                  11,000

Plus deterministic cases through the real decoder: payloads nested up to the exchange's depth
limit are answered and deeper ones dropped, and the Redis reader thread survives garbage.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.times import parse_slot
from gsy_local_exchange import redis_api
from gsy_local_exchange.assets import ENERGY_TOLERANCE, Storage
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.commands import MAX_CONSTANT_FEE
from gsy_local_exchange.orders import BID, OFFER
from gsy_local_exchange.redis_api import MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, RedisEdge, decode_payload
from gsy_local_exchange.scenario import load_scenario
from gsy_local_exchange.simulation import Simulation, StepResult

SCENARIO = load_scenario(
    Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios" / "external_devices.json"
)
START = datetime(2026, 6, 1, 12)  # PV produces at noon, so well-formed offers can succeed
CLOCK = SimulationClock(START, SCENARIO.settings.slot_length, SCENARIO.settings.tick_length, timedelta(hours=1))
_AREAS = {area.name: area for area in Simulation(SCENARIO, CLOCK).engine.areas.values()}
PV, LOAD, FLOAD = (_AREAS[name].uuid for name in ("pv", "load", "forecast-measurement-load"))
HOUSE2 = _AREAS["House 2"].uuid
UNCONTROLLED = [_AREAS[name].uuid for name in ("Grid", "House 1", "Cell Tower", "H1 Storage1", "H1 General Load")]
CONTROLLED = (PV, LOAD, FLOAD, HOUSE2)
PREFIX = {PV: "pv", LOAD: "load", FLOAD: "forecast-measurement-load", HOUSE2: "house-2"}
AGG = "fuzz-aggregator"
BATCH_CHANNEL = channels.batch_commands()
RESPONSE_CHANNEL = channels.batch_response(AGG)
INTERNAL_ERROR = "Internal error while executing the command"

ASSET_COMMANDS = (
    "offer",
    "bid",
    "delete_offer",
    "delete_bid",
    "list_offers",
    "list_bids",
    "device_info",
    "set_energy_forecast",
    "set_energy_measurement",
)
MARKET_COMMANDS = ("grid_fees", "dso_market_stats")
ORDER_KEYS = {"type", "energy", "price", "replace_existing", "time_slot", "transaction_id"}
NEXT_SLOT = "2026-06-01T12:15"
LAST_SLOT = "2026-06-01T11:45"

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(examples: int, *extra_checks: HealthCheck) -> settings:
    return settings(FUZZ, max_examples=examples, suppress_health_check=[*FUZZ.suppress_health_check, *extra_checks])


# ---------------------------------------------------------------------------------------------- values
# Everything a Redis payload can hold after ``json.loads``: huge ints, NaN/inf, lone surrogates.
BEYOND_FLOAT = st.integers(min_value=2**1024, max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-(2**1024)
)
TEXT = st.text(max_size=12) | st.sampled_from(["\ud800", "a\udfff", "\x00", "", " ", "NaN"])
SCALARS = st.none() | st.booleans() | st.integers() | BEYOND_FLOAT | st.floats() | TEXT


def _nest(depth: int, as_dict: bool) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


# Nested garbage; deeper payloads (up to the decoder's limit) are in test_deepest_decodable_payloads_everywhere,
# hypothesis could not print them.
DEEP = st.builds(_nest, st.integers(10, 120), st.booleans())
JSON = (
    st.recursive(
        SCALARS,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
        max_leaves=10,
    )
    | DEEP
)
JSON_OBJECTS = st.dictionaries(TEXT, JSON, max_size=5)
NON_OBJECTS = JSON.filter(lambda value: not isinstance(value, dict))

NOT_A_NUMBER = (
    st.none() | st.booleans() | TEXT | st.lists(JSON, max_size=3) | st.dictionaries(TEXT, JSON, max_size=3) | DEEP
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NEGATIVE = st.floats(max_value=-1e-12, allow_infinity=False) | st.integers(max_value=-1)
TOO_SMALL_ENERGY = st.floats(min_value=0, max_value=ENERGY_TOLERANCE * 0.99) | st.just(0)
TOO_MUCH_ENERGY = st.floats(min_value=1e4, allow_infinity=False, allow_nan=False) | st.integers(10**4, 10**400)
BAD_ENERGY = NOT_A_NUMBER | NON_FINITE | NEGATIVE | TOO_SMALL_ENERGY | TOO_MUCH_ENERGY
BAD_PRICE = NOT_A_NUMBER | NON_FINITE | NEGATIVE | BEYOND_FLOAT
NOT_A_BOOL = JSON.filter(lambda value: not isinstance(value, bool))


def _is_current_slot(value: Any) -> bool:
    try:
        return parse_slot(value) == START
    except ValueError:
        return False


OTHER_SLOTS = st.builds(
    lambda k, fmt: (START + k * timedelta(minutes=15)).strftime(fmt),
    st.integers(-10_000, 10_000).filter(bool),
    st.sampled_from(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H", "%B %d %Y, %H:%M h"]),
).filter(lambda text: not _is_current_slot(text))  # "%Y-%m-%dT%H" of 12:15 is 12:00
BAD_SLOT = (
    st.integers()
    | st.floats()
    | st.booleans()
    | st.lists(JSON, max_size=2)
    | st.dictionaries(TEXT, JSON, max_size=2)
    | DEEP
    | OTHER_SLOTS
    | st.text(max_size=30).filter(lambda text: not _is_current_slot(text))
)
UNPARSABLE_SLOT = st.text(max_size=20).filter(lambda text: not _parses(text))
BAD_ID = TEXT | st.integers() | st.floats() | st.booleans() | st.lists(JSON, max_size=3) | JSON_OBJECTS | DEEP
BAD_FEE = (
    NOT_A_NUMBER
    | NON_FINITE
    | NEGATIVE
    | BEYOND_FLOAT
    | st.floats(min_value=MAX_CONSTANT_FEE + 1e-6, allow_infinity=False, allow_nan=False)
    | st.integers(min_value=MAX_CONSTANT_FEE + 1)
)


def _parses(text: str) -> bool:
    try:
        parse_slot(text)
        return True
    except ValueError:
        return False


def unknown_key(allowed: set[str]) -> st.SearchStrategy[str]:
    return TEXT.filter(lambda key: key not in allowed and key not in ("command", "type", "transaction_id"))


# ---------------------------------------------------------------------------------------------- commands
GOOD_ORDER = {
    OFFER: (PV, {"type": "offer", "energy": 0.01, "price": 0.5}),  # 50 ct/kWh: nothing crosses it
    BID: (LOAD, {"type": "bid", "energy": 0.001, "price": 0.0001}),
}  # 0.1 ct/kWh: nothing crosses it

WELL_FORMED = [
    GOOD_ORDER[OFFER],
    (PV, {"type": "offer", "energy": 0.02, "price": 1.0, "replace_existing": True, "time_slot": None}),
    (PV, {"type": "offer", "energy": 0.01, "price": 0.5, "time_slot": "2026-06-01T12:00"}),
    (PV, {"type": "list_offers", "time_slot": None}),
    (PV, {"type": "delete_offer", "offer_id": None}),
    (PV, {"type": "device_info"}),
    GOOD_ORDER[BID],
    (LOAD, {"type": "bid", "energy": 0.002, "price": 0.0002, "replace_existing": True, "time_slot": None}),
    (LOAD, {"type": "list_bids"}),
    (LOAD, {"type": "delete_bid", "bid_id": None, "time_slot": None}),
    (FLOAD, {"type": "set_energy_forecast", "energy_forecast": {NEXT_SLOT: 0.2}}),
    (FLOAD, {"type": "set_energy_measurement", "energy_measurement": {LAST_SLOT: 0.1}}),
    (FLOAD, {"type": "device_info"}),
    (HOUSE2, {"type": "dso_market_stats", "data": {}}),
    (HOUSE2, {"type": "grid_fees", "data": {"fee_const": 2}}),
]


def _with(base: dict, **changes: Any) -> dict:
    return {**base, **changes}


def _without(base: dict, keys: tuple[str, ...]) -> dict:
    return {key: value for key, value in base.items() if key not in keys}


def malformed_orders(side: str) -> st.SearchStrategy[tuple[str, dict]]:
    uuid, base = GOOD_ORDER[side]
    allowed = ORDER_KEYS | {"attributes", "requirements"}
    return st.one_of(
        BAD_ENERGY.map(lambda value: _with(base, energy=value)),
        BAD_PRICE.map(lambda value: _with(base, price=value)),
        # finite price, but price / energy overflows to an infinite rate
        st.floats(min_value=1e306, max_value=1.7e308).map(lambda value: _with(base, energy=0.001, price=value)),
        NOT_A_BOOL.map(lambda value: _with(base, replace_existing=value)),
        BAD_SLOT.map(lambda value: _with(base, time_slot=value)),
        st.sampled_from([("energy",), ("price",), ("energy", "price")]).map(lambda keys: _without(base, keys)),
        st.tuples(unknown_key(allowed), JSON).map(lambda pair: _with(base, **{pair[0]: pair[1]})),
        st.sampled_from(["attributes", "requirements"]).map(lambda key: _with(base, **{key: {}})),  # PV/load only
    ).map(lambda command: (uuid, command))


def malformed_deletes_and_lists(side: str) -> st.SearchStrategy[tuple[str, dict]]:
    uuid = PV if side == OFFER else LOAD
    return st.one_of(
        st.tuples(st.sampled_from([side, f"{side}_id"]), BAD_ID).map(
            lambda pair: {"type": f"delete_{side}", pair[0]: pair[1]}
        ),
        BAD_SLOT.map(lambda value: {"type": f"delete_{side}", "time_slot": value}),
        BAD_SLOT.map(lambda value: {"type": f"list_{side}s", "time_slot": value}),
    ).map(lambda command: (uuid, command))


def malformed_energy_series(kind: str) -> st.SearchStrategy[tuple[str, dict]]:
    key = f"energy_{kind}"
    base = {"type": f"set_energy_{kind}", key: {NEXT_SLOT: 0.5}}
    return st.one_of(
        (NOT_A_NUMBER.filter(lambda value: not isinstance(value, dict)) | st.just({})).map(
            lambda value: _with(base, **{key: value})
        ),
        UNPARSABLE_SLOT.map(lambda slot: _with(base, **{key: {slot: 0.5}})),
        (NOT_A_NUMBER | NON_FINITE | NEGATIVE | BEYOND_FLOAT).map(
            lambda value: _with(base, **{key: {NEXT_SLOT: value}})
        ),
        st.tuples(unknown_key({key}), JSON).map(lambda pair: _with(base, **{pair[0]: pair[1]})),
        st.just(_without(base, (key,))),
    ).map(lambda command: (FLOAD, command))


def malformed_grid_fees() -> st.SearchStrategy[tuple[str, dict]]:
    return st.one_of(
        st.just({"type": "grid_fees"}),
        NOT_A_NUMBER.map(lambda data: {"type": "grid_fees", "data": {} if isinstance(data, dict) else data}),
        JSON.map(lambda value: {"type": "grid_fees", "data": {"fee_percent": value}}),  # conflicts with type 1
        BAD_FEE.map(lambda value: {"type": "grid_fees", "data": {"fee_const": value}}),
        BAD_FEE.map(lambda value: {"type": "grid_fees", "fee_const": value}),
    ).map(lambda command: (HOUSE2, command))


WRONG_TARGET = [
    (LOAD, GOOD_ORDER[OFFER][1]),
    (FLOAD, GOOD_ORDER[OFFER][1]),
    (PV, GOOD_ORDER[BID][1]),
    (LOAD, {"type": "delete_offer"}),
    (LOAD, {"type": "list_offers"}),
    (PV, {"type": "delete_bid"}),
    (PV, {"type": "list_bids"}),
    (PV, {"type": "set_energy_forecast", "energy_forecast": {NEXT_SLOT: 0.2}}),  # PV is not forecast-driven
    (LOAD, {"type": "set_energy_measurement", "energy_measurement": {LAST_SLOT: 0.1}}),
    (PV, {"type": "grid_fees", "data": {"fee_const": 2}}),
    (FLOAD, {"type": "dso_market_stats", "data": {}}),
    (HOUSE2, GOOD_ORDER[OFFER][1]),
    (HOUSE2, {"type": "device_info"}),
    (HOUSE2, {"type": "list_bids"}),
    (HOUSE2, {"type": "set_energy_forecast", "energy_forecast": {NEXT_SLOT: 0.2}}),
]
KNOWN_TYPES = set(ASSET_COMMANDS) | set(MARKET_COMMANDS)
BAD_TYPE = TEXT.filter(lambda text: text not in KNOWN_TYPES) | JSON.filter(lambda value: not isinstance(value, str))

MALFORMED = st.one_of(
    malformed_orders(OFFER),
    malformed_orders(BID),
    malformed_deletes_and_lists(OFFER),
    malformed_deletes_and_lists(BID),
    malformed_energy_series("forecast"),
    malformed_energy_series("measurement"),
    malformed_grid_fees(),
    st.sampled_from(WRONG_TARGET),
    # well-formed commands for areas this aggregator does not control, or that do not exist
    st.tuples(st.sampled_from(UNCONTROLLED) | TEXT, st.sampled_from(WELL_FORMED)).map(
        lambda pair: (pair[0], pair[1][1])
    ),
    st.tuples(st.sampled_from(CONTROLLED), BAD_TYPE, JSON_OBJECTS).map(
        lambda triple: (triple[0], {**triple[2], "type": triple[1]})
    ),
    st.tuples(st.sampled_from(CONTROLLED), JSON_OBJECTS).map(lambda pair: (pair[0], _without(pair[1], ("type",)))),
    st.tuples(st.sampled_from(CONTROLLED), NON_OBJECTS),  # a command that is not an object
)


@st.composite
def batch_plans(draw) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``batch_commands`` mixing malformed and well-formed commands, and the expected statuses."""
    bad = draw(st.lists(MALFORMED, min_size=1, max_size=8))
    good = draw(st.lists(st.sampled_from(WELL_FORMED), max_size=4))
    items = draw(
        st.permutations(
            [(uuid, command, "error") for uuid, command in bad] + [(uuid, command, "ready") for uuid, command in good]
        )
    )
    commands: dict[str, list] = {}
    expected: dict[str, list[str]] = {}
    for uuid, command, status in items:
        commands.setdefault(uuid, []).append(command)
        expected.setdefault(uuid, []).append(status)
    # "Non-list values": a single command (not itself a list) sent without its list.
    bare = draw(st.sets(st.sampled_from(sorted(commands))))
    for uuid in bare:
        if len(commands[uuid]) == 1 and not isinstance(commands[uuid][0], list):
            commands[uuid] = commands[uuid][0]
    return commands, expected


# ---------------------------------------------------------------------------------------------- checks
def controlled_simulation(**options: Any) -> Simulation:
    """A simulation in its first slot whose aggregator ``AGG`` controls pv, load, the forecast load and House 2.

    ``options``: of :class:`Simulation` (limits, strict_reference)."""
    simulation = Simulation(SCENARIO, CLOCK, **options)
    [(channel, reply)] = simulation.handle(
        channels.AGGREGATOR_COMMANDS, {"type": "CREATE", "name": "fuzz", "transaction_id": AGG}
    )
    assert channel == channels.AGGREGATOR_RESPONSE and json.loads(reply)["status"] == "ready"
    for uuid in CONTROLLED:
        [(_, reply)] = simulation.handle(
            channels.AGGREGATOR_COMMANDS,
            {"type": "SELECT", "aggregator_uuid": AGG, "device_uuid": uuid, "transaction_id": f"select-{uuid}"},
        )
        assert json.loads(reply)["status"] == "SELECTED"
    step(simulation)
    return simulation


def step(simulation: Simulation) -> StepResult:
    result = simulation.step()
    for _, payload in result.messages:
        json.loads(payload)
    assert_engine_invariants(simulation)
    return result


def assert_engine_invariants(simulation: Simulation) -> None:
    engine = simulation.engine
    for order_id, order in engine.orders.items():
        assert order.id == order_id and order.side in (OFFER, BID)
        assert math.isfinite(order.energy) and order.energy > 0, order
        assert math.isfinite(order.original_rate) and order.original_rate >= 0, order
        assert math.isfinite(order.price) and order.price >= 0, order
        assert (order.asset.offers if order.side == OFFER else order.asset.bids).get(order_id) is order
        for market in order.asset.path:
            assert (market.offers if order.side == OFFER else market.bids).get(order_id) is order
    for market in engine.markets:
        for book in (market.offers, market.bids):
            for order_id, order in book.items():
                assert engine.orders.get(order_id) is order and market in order.asset.path
        assert market.fee_configured is None or (
            math.isfinite(market.fee_configured) and 0 <= market.fee_configured <= MAX_CONSTANT_FEE
        )
        assert math.isfinite(market.fee_running) and market.fee_running >= 0
    for asset in engine.assets:
        for book in (asset.offers, asset.bids):
            for order_id, order in book.items():
                assert engine.orders.get(order_id) is order and order.asset is asset
        if not asset.infinite:
            assert sum(order.energy for order in asset.offers.values()) <= asset.sellable() + ENERGY_TOLERANCE
            assert sum(order.energy for order in asset.bids.values()) <= asset.buyable() + ENERGY_TOLERANCE
        for value in vars(asset.ledger).values():
            assert math.isfinite(value)
        if isinstance(asset, Storage):
            assert -ENERGY_TOLERANCE <= asset.used_storage <= asset.capacity + ENERGY_TOLERANCE
        for pending in (getattr(asset, "pending_forecasts", {}), getattr(asset, "pending_measurements", {})):
            assert all(math.isfinite(value) and value >= 0 for value in pending.values())


def error_text(response: dict) -> str:
    text = response.get("error_message") or response.get("message") or response.get("error") or ""
    return text if isinstance(text, str) else json.dumps(text)


def assert_error(response: dict) -> None:
    assert response.get("status") == "error" or "error" in response, response
    assert error_text(response).strip(), response
    assert INTERNAL_ERROR not in error_text(response), response


def messages_on(result_messages: list[tuple[str, str]], channel: str) -> list[dict]:
    return [json.loads(payload) for name, payload in result_messages if name == channel]


def assert_batch_answered(envelope: dict, transaction_id: str, commands: dict, expected: dict) -> None:
    assert envelope["command"] == "batch_commands" and envelope["aggregator_uuid"] == AGG
    assert envelope["transaction_id"] == transaction_id and "status" not in envelope
    responses = envelope["responses"]
    assert set(responses) == set(commands)
    for uuid, statuses in expected.items():
        entries = responses[uuid]
        assert len(entries) == len(statuses), (commands[uuid], entries)
        # strict=False: an area listed with no command still gets one answer entry.
        for command, entry, status in zip(
            commands[uuid] if isinstance(commands[uuid], list) else [commands[uuid]], entries, statuses, strict=False
        ):
            assert entry.get("area_uuid") == uuid, entry
            if status == "error":
                assert entry.get("status") == "error", (command, entry)
                assert_error(entry)
            else:
                assert entry.get("status") == "ready", (command, entry)


# ---------------------------------------------------------------------------------------------- tests
# Regressions: each of these commands once made the executor raise, or placed an order at an infinite rate.
_FOUND = {
    PV: [
        {"type": "offer", "energy": 0.01, "price": 10**400},
        {"type": "offer", "energy": 0.001, "price": 1e308},
        {"type": "delete_offer", "offer_id": ["unhashable"]},
        {"type": "offer", "energy": -(10**400), "price": 1},
    ],
    LOAD: [{"type": "bid", "energy": 0.001, "price": -(10**400)}, {"type": "delete_bid", "bid": {}}],
    FLOAD: [{"type": "set_energy_forecast", "energy_forecast": {NEXT_SLOT: 10**400}}],
    HOUSE2: [{"type": "grid_fees", "data": {"fee_const": 10**400}}],
}


@fuzz(3000)
@given(rounds=st.lists(st.lists(batch_plans(), min_size=1, max_size=3), min_size=1, max_size=2))
@example(rounds=[[(_FOUND, {uuid: ["error"] * len(commands) for uuid, commands in _FOUND.items()})]])
def test_batches_mix_malformed_and_well_formed_commands(rounds) -> None:
    simulation = controlled_simulation()
    for round_index, batches in enumerate(rounds):
        sent = {}
        for index, (commands, expected) in enumerate(batches):
            transaction_id = f"batch-{round_index}-{index}"
            envelope = {
                "type": "BATCHED",
                "transaction_id": transaction_id,
                "aggregator_uuid": AGG,
                "batch_commands": commands,
            }
            assert simulation.handle(BATCH_CHANNEL, envelope) == []  # queued for the tick
            sent[transaction_id] = (commands, expected)
        result = step(simulation)
        envelopes = {
            envelope["transaction_id"]: envelope for envelope in messages_on(result.messages, RESPONSE_CHANNEL)
        }
        assert set(envelopes) == set(sent)
        for transaction_id, (commands, expected) in sent.items():
            assert_batch_answered(envelopes[transaction_id], transaction_id, commands, expected)


def controlled_state(simulation: Simulation) -> tuple:
    engine = simulation.engine
    pv, load, forecast_load = (engine.areas[uuid] for uuid in (PV, LOAD, FLOAD))
    return (
        {order_id: (order.energy, order.original_rate) for order_id, order in pv.offers.items()},
        {order_id: (order.energy, order.original_rate) for order_id, order in load.bids.items()},
        dict(forecast_load.pending_forecasts),
        dict(forecast_load.pending_measurements),
        engine.areas[HOUSE2].fee_configured,
        dict(simulation.registry.owner),
    )


@fuzz(1500)
@given(bad=st.lists(MALFORMED, min_size=1, max_size=10))
def test_malformed_commands_change_nothing(bad) -> None:
    simulation = controlled_simulation()
    setup = {
        PV: [GOOD_ORDER[OFFER][1]],
        LOAD: [GOOD_ORDER[BID][1]],
        FLOAD: [{"type": "set_energy_forecast", "energy_forecast": {NEXT_SLOT: 0.3}}],
    }
    simulation.handle(BATCH_CHANNEL, {"transaction_id": "setup", "aggregator_uuid": AGG, "batch_commands": setup})
    step(simulation)
    before = controlled_state(simulation)
    assert before[0] and before[1] and before[2]  # something a bad delete or forecast could wrongly change
    commands: dict[str, list] = {}
    for uuid, command in bad:
        commands.setdefault(uuid, []).append(command)
    simulation.handle(BATCH_CHANNEL, {"transaction_id": "bad", "aggregator_uuid": AGG, "batch_commands": commands})
    result = step(simulation)
    [envelope] = messages_on(result.messages, RESPONSE_CHANNEL)
    assert_batch_answered(envelope, "bad", commands, {uuid: ["error"] * len(items) for uuid, items in commands.items()})
    assert controlled_state(simulation) == before


TRANSACTION_IDS = st.builds(lambda n, text: f"{n}-{text}", st.integers(0, 10**6), TEXT)
ENVELOPES = st.one_of(
    st.tuples(st.just("dropped"), NON_OBJECTS),
    st.tuples(
        st.just("dropped"),
        st.builds(
            lambda rest, tid: {**rest, "transaction_id": tid, "aggregator_uuid": AGG},
            JSON_OBJECTS,
            JSON.filter(lambda value: not isinstance(value, str)),
        ),
    ),
    st.tuples(st.just("dropped"), JSON_OBJECTS.map(lambda rest: _without(rest, ("transaction_id",)))),
    st.tuples(
        st.just("dropped"),
        st.builds(
            lambda rest, agg: {
                **_without(rest, ("aggregator_uuid",)),
                "transaction_id": "t",
                **({} if agg is None else {"aggregator_uuid": agg}),
            },
            JSON_OBJECTS,
            JSON.filter(lambda value: not isinstance(value, str)),
        ),
    ),
    st.tuples(
        st.just("unknown aggregator"),
        st.builds(
            lambda agg, commands: {"transaction_id": "t", "aggregator_uuid": agg, "batch_commands": commands},
            TEXT.filter(lambda text: text != AGG),
            JSON,
        ),
    ),
    st.tuples(
        st.just("bad commands"),
        st.builds(
            lambda rest, commands: {**rest, "transaction_id": "t", "aggregator_uuid": AGG, "batch_commands": commands},
            JSON_OBJECTS,
            NON_OBJECTS,
        ),
    ),
    st.tuples(
        st.just("bad commands"),
        JSON_OBJECTS.map(
            lambda rest: {**_without(rest, ("batch_commands",)), "transaction_id": "t", "aggregator_uuid": AGG}
        ),
    ),
)


@fuzz(1500)
@given(
    envelopes=st.lists(ENVELOPES, min_size=1, max_size=4),
    tids=st.lists(TRANSACTION_IDS, min_size=4, max_size=4, unique=True),
)
def test_malformed_batch_envelopes(envelopes, tids) -> None:
    simulation = controlled_simulation()
    answered = []
    for (kind, payload), tid in zip(envelopes, tids, strict=False):  # 4 ids, 1 to 4 envelopes
        if isinstance(payload, dict) and payload.get("transaction_id") == "t":
            payload = {**payload, "transaction_id": tid}
        replies = simulation.handle(BATCH_CHANNEL, payload)
        if kind == "dropped":
            assert replies == []
            continue
        [(channel, reply)] = replies  # answered at once, not at the tick
        envelope = json.loads(reply)
        assert channel == channels.batch_response(payload["aggregator_uuid"])
        assert envelope["status"] == "error" and envelope["message"].strip()
        assert envelope["transaction_id"] == tid and envelope["responses"] == {}
        answered.append((tid, payload, reply))
    result = step(simulation)
    assert not [name for name, _ in result.messages if "/response/batch_commands" in name]
    # Idempotency: a re-sent batch is answered again with the same envelope, once, at the next tick.
    for _, payload, _ in answered:
        assert simulation.handle(BATCH_CHANNEL, payload) == []
    result = step(simulation)
    republished = Counter(payload for name, payload in result.messages if "/response/batch_commands" in name)
    assert republished == Counter(reply for _, _, reply in answered)


CREATED_EMPTY = "empty-aggregator"  # exists, controls nothing
AGGREGATOR_TYPES = ("CREATE", "DELETE", "SELECT", "UNSELECT")
NOT_A_UUID = TEXT.filter(lambda text: text not in (AGG, CREATED_EMPTY)) | JSON.filter(lambda v: not isinstance(v, str))
NOT_A_DEVICE = (
    TEXT.filter(lambda text: text not in CONTROLLED)
    | JSON.filter(lambda v: not isinstance(v, str))
    | st.sampled_from(UNCONTROLLED)
)
MALFORMED_AGGREGATOR_COMMANDS = st.one_of(
    st.tuples(
        TEXT.filter(lambda text: text not in AGGREGATOR_TYPES) | JSON.filter(lambda v: not isinstance(v, str)),
        JSON_OBJECTS,
    ).map(lambda pair: {**pair[1], "type": pair[0]}),
    JSON_OBJECTS.map(lambda rest: _without(rest, ("type",))),
    st.just({"type": "CREATE", "name": "again"}).map(lambda command: {**command, "transaction_id": AGG}),
    NOT_A_UUID.map(lambda agg: {"type": "DELETE", "aggregator_uuid": agg}),
    st.tuples(NOT_A_UUID, st.sampled_from(CONTROLLED)).map(
        lambda pair: {"type": "SELECT", "aggregator_uuid": pair[0], "device_uuid": pair[1]}
    ),
    NOT_A_DEVICE.map(lambda device: {"type": "SELECT", "aggregator_uuid": CREATED_EMPTY, "device_uuid": device}),
    st.sampled_from(CONTROLLED).map(  # already selected by AGG
        lambda device: {"type": "SELECT", "aggregator_uuid": CREATED_EMPTY, "device_uuid": device}
    ),
    st.tuples(NOT_A_UUID | st.just(CREATED_EMPTY), st.sampled_from(CONTROLLED) | NOT_A_DEVICE).map(
        lambda pair: {"type": "UNSELECT", "aggregator_uuid": pair[0], "device_uuid": pair[1]}
    ),
)


def registry_state(simulation: Simulation) -> tuple:
    registry = simulation.registry
    return ({uuid: list(aggregator.devices) for uuid, aggregator in registry.aggregators.items()}, dict(registry.owner))


AGGREGATOR_CHANNELS = st.sampled_from([channels.AGGREGATOR_COMMANDS, channels.AGGREGATOR_COMMANDS_LEGACY])


@fuzz(1500)
@given(
    commands=st.lists(
        st.tuples(MALFORMED_AGGREGATOR_COMMANDS, TRANSACTION_IDS | JSON, AGGREGATOR_CHANNELS), min_size=1, max_size=5
    ),
    garbage=st.lists(JSON, max_size=3),
)
@example(
    commands=[
        ({"type": ["unhashable"]}, "t-1", channels.AGGREGATOR_COMMANDS),  # regressions
        (
            {"type": "UNSELECT", "aggregator_uuid": None, "device_uuid": "nobody's"},
            "t-2",
            channels.AGGREGATOR_COMMANDS_LEGACY,
        ),
    ],
    garbage=[],
)
def test_malformed_aggregator_commands(commands, garbage) -> None:
    simulation = controlled_simulation()
    simulation.handle(channels.AGGREGATOR_COMMANDS, {"type": "CREATE", "name": "e", "transaction_id": CREATED_EMPTY})
    for payload in garbage:  # anything at all: never raises, at most one answer that is JSON
        replies = simulation.handle(channels.AGGREGATOR_COMMANDS, payload)
        assert len(replies) <= 1 and all(isinstance(json.loads(reply), dict) for _, reply in replies)
    before = registry_state(simulation)  # garbage may have created aggregators
    for command, tid, channel in commands:
        replies = simulation.handle(
            channel, {**command, "transaction_id": tid} if "transaction_id" not in command else command
        )
        tid = command.get("transaction_id", tid)
        if not isinstance(tid, str) or not tid:
            assert replies == []  # nobody to answer
            continue
        [(reply_channel, reply)] = replies
        response = json.loads(reply)
        assert reply_channel == channels.AGGREGATOR_RESPONSE
        assert response["status"] == "error" and response["transaction_id"] == tid
        if command.get("type") not in ("CREATE", "DELETE"):  # REDIS.md 4.1/4.2 errors carry no text
            assert response["msg"].strip()
    assert registry_state(simulation) == before
    step(simulation)


AREA_CHANNELS = sorted(controlled_simulation().register_channels())


@fuzz(1500)
@given(
    registered=st.booleans(),
    messages=st.lists(
        st.tuples(st.sampled_from(AREA_CHANNELS) | TEXT.map(lambda text: f"pv/{text}"), JSON | JSON_OBJECTS),
        min_size=1,
        max_size=6,
    ),
)
def test_garbage_on_every_area_channel(registered, messages) -> None:
    """Registration and direct-mode channels: every object request gets exactly one answer, now or at the tick."""
    simulation = controlled_simulation()
    registered_prefixes = set(PREFIX.values()) if registered else set()
    for prefix in registered_prefixes:
        simulation.handle(channels.register(prefix), {"name": prefix, "transaction_id": "r"})
    expected: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    for channel, payload in messages:
        prefix, _, command = channel.rpartition("/")
        replies = simulation.handle(channel, payload)
        for name, reply in replies:
            assert isinstance(json.loads(reply), dict)
            answered[name] += 1
        if prefix not in simulation.prefixes or not isinstance(payload, dict):
            assert replies == []  # nobody serves the channel, or nothing to answer
            continue
        if command in channels.SELF_ANSWERED_COMMANDS and "command" in payload:
            continue  # looks like our own answer on the shared channel: ignored
        if command in ("register_participant", "unregister_participant"):
            expected[f"{prefix}/response/{command}"] += 1
            [(_, reply)] = replies
            response = json.loads(reply)
            if command == "register_participant":
                assert response["device_uuid"] == simulation.prefixes[prefix].uuid
                registered_prefixes.add(prefix)
            elif prefix in registered_prefixes:
                assert response["status"] == "ready"
                registered_prefixes.discard(prefix)
            else:
                assert_error(response)
            continue
        expected[channels.area_command_response(prefix, command)] += 1
        if prefix not in registered_prefixes and command not in channels.SELF_ANSWERED_COMMANDS:
            [(_, reply)] = replies
            assert_error(json.loads(reply))
    result = step(simulation)
    for name, payload in result.messages:
        if "/response/" in name or name.rpartition("/")[2] in channels.SELF_ANSWERED_COMMANDS:
            answered[name] += 1
            assert isinstance(json.loads(payload), dict)
    assert answered == expected


def direct_requests() -> st.SearchStrategy[tuple[str, str, dict]]:
    """(prefix, command, payload) of malformed legacy direct requests (REDIS.md 9)."""
    sources = st.one_of(
        malformed_orders(OFFER),
        malformed_orders(BID),
        malformed_deletes_and_lists(OFFER),
        malformed_deletes_and_lists(BID),
        malformed_energy_series("forecast"),
        malformed_energy_series("measurement"),
        malformed_grid_fees(),
        st.sampled_from(
            [(uuid, command) for uuid, command in WRONG_TARGET if command["type"] in ASSET_COMMANDS + MARKET_COMMANDS]
        ),
    )
    return sources.map(lambda pair: (PREFIX[pair[0]], pair[1]["type"], _without(pair[1], ("type",))))


@fuzz(1000)
@given(requests=st.lists(direct_requests(), min_size=1, max_size=6))
@example(
    requests=[
        ("pv", "delete_offer", {"offer": ["unhashable"]}),
        ("load", "delete_bid", {"bid_id": {}}),
        ("pv", "offer", {"energy": 0.001, "price": 1e308}),
    ]
)  # regressions
def test_malformed_direct_mode_requests(requests) -> None:
    simulation = controlled_simulation()
    for prefix in PREFIX.values():
        simulation.handle(channels.register(prefix), {"name": prefix, "transaction_id": "r"})
    answers: dict[str, list[dict]] = {}
    for index, (prefix, command, payload) in enumerate(requests):
        tid = f"direct-{index}"
        for _, reply in simulation.handle(channels.area_command(prefix, command), {**payload, "transaction_id": tid}):
            answers.setdefault(tid, []).append(json.loads(reply))
    for _, reply in step(simulation).messages:
        response = json.loads(reply)
        if isinstance(response, dict) and str(response.get("transaction_id", "")).startswith("direct-"):
            answers.setdefault(response["transaction_id"], []).append(response)
    assert sorted(answers) == sorted(f"direct-{index}" for index in range(len(requests)))
    for responses in answers.values():
        [response] = responses
        assert_error(response)


# ---------------------------------------------------------------------------------------------- raw bytes
def depth(value: Any) -> int:
    """Levels of nested containers, counted breadth-first."""
    levels, frontier = 0, [value]
    while True:
        frontier = [item for item in frontier if isinstance(item, (dict, list))]
        if not frontier:
            return levels
        levels += 1
        frontier = [child for item in frontier for child in (item.values() if isinstance(item, dict) else item)]


def _reference(data: bytes) -> tuple[bool, Any]:
    try:
        value = json.loads(data)
    except Exception:  # noqa: BLE001 - whatever json refuses
        return False, None
    return depth(value) <= MAX_PAYLOAD_DEPTH, value


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def redis_api_warnings():
    """Every warning of the decoder; its rate limit (tested below) is lifted so each one is seen."""
    handler = _Records()
    logger = logging.getLogger("gsy_local_exchange.redis_api")
    logger.addHandler(handler)
    limited, redis_api.limited_log = redis_api.limited_log, RateLimitedLog(logger, burst=sys.maxsize)
    yield handler
    redis_api.limited_log = limited
    logger.removeHandler(handler)


def _encoded(value: Any, encoding: str) -> bytes:
    text = json.dumps(value, ensure_ascii=False)
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


RAW_PAYLOADS = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda value: json.dumps(value).encode(), JSON),
    st.builds(lambda value, cut: json.dumps(value).encode()[:cut], JSON, st.integers(0, 40)),  # truncated
    st.builds(_encoded, JSON, st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1", "cp1252"])),
    st.builds(lambda head, tail: head + b"\xff\xfe\x80" + tail, st.binary(max_size=8), st.binary(max_size=8)),
    st.integers(1, 200_000).map(lambda levels: b"[" * levels + b"]" * levels),  # too deep for the decoder
    st.builds(
        lambda levels, as_dict: json.dumps(_nest(levels, as_dict)).encode(),  # around the exchange's limit
        st.integers(MAX_PAYLOAD_DEPTH - 3, MAX_PAYLOAD_DEPTH + 3),
        st.booleans(),
    ),
    st.integers(4301, 6000).map(lambda digits: b"1" * digits),  # beyond Python's int digit limit
)


@fuzz(1000, HealthCheck.function_scoped_fixture)
@given(data=RAW_PAYLOADS)
def test_decode_payload_never_raises(redis_api_warnings, data) -> None:
    redis_api_warnings.records.clear()
    decoded = decode_payload(data, "x/channel")
    ok, reference = _reference(data)
    if ok:
        assert json.dumps(decoded) == json.dumps(reference)  # (NaN never equals itself)
        assert not redis_api_warnings.records
    else:
        assert decoded is None
        [record] = redis_api_warnings.records
        assert "x/channel" in record.getMessage()


class _FakePubSub:
    """Hands the reader these messages (an exception instance is raised instead), then stops it."""

    def __init__(self, messages: list, edge: RedisEdge) -> None:
        self.messages = list(messages)
        self.edge = edge

    def get_message(self, timeout: float):
        if not self.messages:
            self.edge._stopping.set()
            return None
        item = self.messages.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def _read_all(edge: RedisEdge, items: list) -> list:
    """Run the real reader loop over ``items``; what it queued for the main loop."""
    edge._stopping.clear()
    edge._pubsub = _FakePubSub(items, edge)
    reader = threading.Thread(target=edge._read)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive()
    received = []
    while (message := edge.receive()) is not None:
        received.append(message)
    return received


def test_reader_thread_survives_undecodable_payloads() -> None:
    """The subscriber thread queues (channel, None) for garbage and keeps reading, whatever fails."""
    edge = RedisEdge("redis://127.0.0.1:1")  # never connects: the pubsub is replaced
    garbage = [
        b"\xff\xfe",
        b"[" * 100_000,
        b"[" * 900 + b"]" * 900,
        b"{",
        b"1" * 5000,
        "\ud800",
        b" " * (MAX_PAYLOAD_BYTES + 1),
    ]
    items = [{"type": "message", "channel": b"c", "data": data} for data in garbage]
    items += [
        ValueError("a reply redis-py cannot parse"),
        {"type": "message"},  # no channel, no data
        {"type": "message", "channel": b"c", "data": b'{"ok": 1}'},
    ]
    assert _read_all(edge, items) == [("c", None)] * len(garbage) + [("c", {"ok": 1})]
    edge.client.close()


def test_reader_drops_what_exceeds_the_inbox_bound(monkeypatch) -> None:
    """Messages the main loop has not taken yet are bounded in bytes; taking them frees the room."""
    monkeypatch.setattr(redis_api, "MAX_INBOX_BYTES", 100)
    edge = RedisEdge("redis://127.0.0.1:1")
    message = {"type": "message", "channel": b"c", "data": b'{"n": "' + b"x" * 32 + b'"}'}  # 41 bytes
    assert _read_all(edge, [message] * 5) == [("c", {"n": "x" * 32})] * 2
    assert _read_all(edge, [message] * 2) == [("c", {"n": "x" * 32})] * 2
    edge.client.close()


def test_rate_limited_log_counts_what_it_suppresses(caplog) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("test.limit"), period=10, burst=3, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.limit"):
        for index in range(1000):
            log.warning("garbage on %s", f"c{index}")
        log.warning("another kind")  # limited separately
        now[0] = 10.0
        log.warning("garbage on %s", "later")
    assert [record.getMessage() for record in caplog.records] == [
        "garbage on c0",
        "garbage on c1",
        "garbage on c2",
        "another kind",
        "garbage on later (997 similar messages suppressed)",
    ]


def _with_stack(frames: int, function):
    """Call ``function`` ``frames`` Python frames deeper, as the exchange's runner does."""
    return function() if frames == 0 else _with_stack(frames - 1, function)


def _deep_payloads(value: Any) -> list[tuple[str, dict]]:
    """(channel, payload) with ``value`` in every place a client value is echoed or looked up."""
    return [
        (channels.AGGREGATOR_COMMANDS, {"type": "CREATE", "name": value, "transaction_id": "deep-create"}),
        (channels.AGGREGATOR_COMMANDS, {"type": "DELETE", "aggregator_uuid": value, "transaction_id": "deep-delete"}),
        (
            channels.AGGREGATOR_COMMANDS,
            {"type": "SELECT", "aggregator_uuid": AGG, "device_uuid": value, "transaction_id": "deep-select"},
        ),
        (channels.AGGREGATOR_COMMANDS, {"type": value, "transaction_id": "deep-type"}),
        ("pv/register_participant", {"transaction_id": value}),
        ("load/offer", {"energy": 1, "price": 1, "transaction_id": value}),  # not registered: answered at once
        ("pv/list_offers", {"transaction_id": value}),  # queued for the tick
        ("pv/delete_bid", {"bid": value, "transaction_id": value}),
        ("pv/delete_offer", {"offer": value, "transaction_id": value}),
        ("forecast-measurement-load/set_energy_forecast", {"energy_forecast": value, "transaction_id": value}),
        (
            BATCH_CHANNEL,
            {
                "transaction_id": "deep-batch",
                "aggregator_uuid": AGG,
                "batch_commands": {
                    "no-such-area": [{"type": value}],
                    PV: [{"type": "offer", "energy": value, "price": 1}, {"type": value}],
                    LOAD: value,
                    FLOAD: [{"type": "set_energy_forecast", "energy_forecast": {NEXT_SLOT: value}}],
                },
            },
        ),
    ]


@pytest.mark.parametrize("as_dict", [False, True])
def test_payloads_nested_up_to_the_limit_are_handled_and_deeper_ones_dropped(as_dict) -> None:
    """Through the real decoder: at the depth limit the exchange answers, beyond it the payload is dropped;
    even 300 frames down the stack (the runner's depth is far less) nothing raises."""
    simulation = controlled_simulation()
    simulation.handle("pv/register_participant", {"transaction_id": "r"})
    for index, (channel, _) in enumerate(_deep_payloads(None)):
        levels = MAX_PAYLOAD_DEPTH
        while depth(_deep_payloads(_nest(levels, as_dict))[index][1]) > MAX_PAYLOAD_DEPTH:
            levels -= 1
        for extra, accepted in ((0, True), (1, False), (900, False)):
            payload = _deep_payloads(_nest(levels + extra, as_dict))[index][1]
            decoded = decode_payload(json.dumps(payload).encode(), channel)
            assert (decoded is not None) == accepted
            replies = _with_stack(300, lambda: simulation.handle(channel, decoded))  # noqa: B023 - called at once
            assert all(isinstance(json.loads(reply), dict) for _, reply in replies)
    result = _with_stack(300, lambda: step(simulation))
    assert any(name == RESPONSE_CHANNEL for name, _ in result.messages)
