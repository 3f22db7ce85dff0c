"""What a running exchange tells its web tier: simulation id, run id and the grid structure.

The HTTP facade (``gsy_local_exchange.http``) relays REST calls to the exchange over Redis, like the
hosted web tier relays to gsy-e. It may run in the exchange process or on its own, and may be
restarted while the exchange keeps running, so it learns the grid from a Redis key the exchange
writes at start instead of from shared memory. ``run_id`` changes with every exchange start, so
state the facade keeps for one run is never mistaken for another's.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from pydantic import BaseModel

from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.grid import MarketArea

limited_log = RateLimitedLog(logging.getLogger(__name__))  # the facade re-reads the key every few seconds

DESCRIPTOR_KEY = "gsy-e-sdk:exchange:descriptor"
DEFAULT_SIMULATION_NAMESPACE = uuid.UUID("5b0c1a8e-64d2-4f27-9d4a-6c3c8f1e2a10")

# REST.md 3.4 node types: markets are "Area"; assets keep their family name.
_REST_TYPES = {
    "PV": "PV",
    "PredefinedPV": "PV",
    "PVProfile": "PV",
    "LoadHours": "Load",
    "LoadProfile": "Load",
    "Storage": "Storage",
    "SmartMeter": "SmartMeter",
    "InfiniteBus": "InfiniteBus",
    "MarketMaker": "MarketMaker",
    "CommercialProducer": "CommercialProducer",
}


class Node(BaseModel):
    name: str
    type: str
    uuid: str
    prefix: str | None = None  # channel prefix when externally controllable, else None
    children: list[Node] | None = None  # markets only

    @property
    def is_market(self) -> bool:
        return self.children is not None


class Descriptor(BaseModel):
    simulation_id: str
    run_id: str
    start_date: str
    slot_length_minutes: float
    tick_length_seconds: float
    root: Node

    def nodes(self) -> dict[str, Node]:
        """Every node by uuid."""
        found: dict[str, Node] = {}
        stack = [self.root]
        while stack:
            node = stack.pop()
            found[node.uuid] = node
            stack.extend(node.children or ())
        return found


def default_simulation_id(scenario_name: str) -> str:
    """A stable id per scenario name, so scripts can keep it across restarts."""
    return str(uuid.uuid5(DEFAULT_SIMULATION_NAMESPACE, scenario_name))


def build_descriptor(simulation: Any, simulation_id: str, run_id: str | None = None) -> Descriptor:
    """Describe ``simulation`` (an ``gsy_local_exchange.simulation.Simulation``); pure."""
    prefixes = {area.uuid: prefix for prefix, area in simulation.prefixes.items()}

    def node(area: MarketArea | Asset) -> Node:
        if isinstance(area, MarketArea):
            return Node(
                name=area.name,
                type="Area",
                uuid=area.uuid,
                prefix=prefixes.get(area.uuid),
                children=[node(child) for child in area.children],
            )
        kind = _REST_TYPES.get(area.node.type, area.node.type)
        return Node(name=area.name, type=kind, uuid=area.uuid, prefix=prefixes.get(area.uuid))

    clock = simulation.clock
    return Descriptor(
        simulation_id=simulation_id,
        run_id=run_id or str(uuid.uuid4()),
        start_date=clock.start.isoformat(),
        slot_length_minutes=clock.slot_length.total_seconds() / 60,
        tick_length_seconds=clock.tick_length.total_seconds(),
        root=node(simulation.engine.root),
    )


def publish_descriptor(client: redis.Redis, descriptor: Descriptor) -> None:
    client.set(DESCRIPTOR_KEY, descriptor.model_dump_json())


def read_descriptor(client: redis.Redis) -> Descriptor | None:
    """The running exchange's descriptor; None when there is none or what the key holds is not one."""
    raw = client.get(DESCRIPTOR_KEY)
    if not raw:
        return None
    try:
        return Descriptor.model_validate_json(raw)
    except ValueError:  # pydantic's ValidationError: not JSON, too deep, not UTF-8, wrong fields
        limited_log.warning("ignored %s: it does not hold an exchange descriptor", DESCRIPTOR_KEY)
        return None
