"""Events' grid_tree: the full tree (reference) and the compact one (own devices and the markets above)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gsy_e_sdk.utils import flatten_info_dict
from gsy_e_sdk.wire import channels
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.scenario import load_scenario
from gsy_local_exchange.simulation import Simulation

SCENARIO = load_scenario(
    Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios" / "external_devices.json"
)
CLOCK = SimulationClock(
    datetime(2026, 6, 1, 12), SCENARIO.settings.slot_length, SCENARIO.settings.tick_length, timedelta(hours=1)
)


def _market_event_tree(compact: bool) -> dict:
    simulation = Simulation(SCENARIO, CLOCK, compact_tree=compact)
    names = {area.name: area.uuid for area in simulation.engine.areas.values()}
    aggregator = "0b8f7c2e-0000-4000-8000-000000000001"
    simulation.handle(channels.AGGREGATOR_COMMANDS, {"type": "CREATE", "name": "a", "transaction_id": aggregator})
    simulation.handle(
        channels.AGGREGATOR_COMMANDS,
        {"type": "SELECT", "aggregator_uuid": aggregator, "device_uuid": names["pv"], "transaction_id": "s1"},
    )
    result = simulation.step()
    (payload,) = [
        json.loads(body)
        for channel, body in result.messages
        if channel == channels.aggregator_events(aggregator) and '"event": "market"' in body
    ]
    return {node.get("area_name"): node for node in flatten_info_dict(payload["grid_tree"]).values()}


@pytest.mark.parametrize("compact", [False, True])
def test_the_own_asset_and_the_markets_above_it_are_always_there(compact: bool) -> None:
    nodes = _market_event_tree(compact)
    assert {"Grid", "House 2", "pv"} <= set(nodes)
    assert "asset_info" in nodes["pv"] and "children" in nodes["House 2"]
    # Other markets and assets (uncontrolled ones by name only) are in the full tree alone.
    assert ("House 1" in nodes) is not compact and ("H1 General Load" in nodes) is not compact
    assert ("load" in nodes) is not compact
