"""Who may control which area: registration on an area's own channels (REDIS.md 3) and the
areas an aggregator may select (REDIS.md 4.3). No I/O.

An asset registered by a client is connected from the next slot start; an unregistered one is
released from its aggregator at the next slot start, so a slot is traded by one owner throughout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from gsy_e_sdk.wire import channels
from gsy_local_exchange.aggregators import AggregatorRegistry
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.grid import MarketArea
from gsy_local_exchange.outgoing import Outgoing

Area = MarketArea | Asset
NOT_REGISTERED = "Client should be registered in order to access this area."


def area_prefixes(areas: Mapping[str, Area]) -> dict[str, Area]:
    """Channel prefix -> externally controllable area: an asset's name, a market's slug (REDIS.md 1.2)."""
    return {
        (area.slug if isinstance(area, MarketArea) else area.name): area
        for area in areas.values()
        if area.externally_controllable
    }


class Participants:
    def __init__(self, areas: Mapping[str, Area]) -> None:
        self.areas = areas
        self.prefixes = area_prefixes(areas)
        self.registered: set[str] = set()
        self.connected: set[str] = set()  # registered assets, in control from the next slot
        self._to_release: set[str] = set()  # unregistered: leave their aggregator next slot

    def register(self, prefix: str, area: Area, payload: dict) -> list[Outgoing]:
        self.registered.add(area.uuid)
        response = {
            "command": "register",
            "status": "ready",
            "registered": True,
            "transaction_id": payload.get("transaction_id"),
            "device_uuid": area.uuid,
        }
        return [(channels.register_response(prefix), json.dumps(response))]

    def unregister(self, prefix: str, area: Area, payload: dict) -> list[Outgoing]:
        transaction_id = payload.get("transaction_id")
        if area.uuid not in self.registered:
            response = {
                "command": "unregister",
                "status": "error",
                "transaction_id": transaction_id,
                "error_message": NOT_REGISTERED,
            }
        else:
            self.registered.discard(area.uuid)
            self._to_release.add(area.uuid)
            # "status" for gsy-e-style clients, "response" for the original SDK (REDIS.md 3.3).
            response = {
                "command": "unregister",
                "status": "ready",
                "unregistered": True,
                "transaction_id": transaction_id,
                "response": "success",
            }
        return [(channels.unregister_response(prefix), json.dumps(response))]

    def start_slot(self, registry: AggregatorRegistry) -> None:
        """Release the unregistered areas and connect the registered assets."""
        for device in self._to_release:
            registry.release(device)
            self.connected.discard(device)
        self._to_release.clear()
        self.connected |= {uuid for uuid in self.registered if isinstance(self.areas[uuid], Asset)}

    def direct(self, owner: Mapping[str, str]) -> tuple[list[Asset], list[MarketArea]]:
        """(connected assets, registered markets) that no aggregator owns: direct mode's (REDIS.md 9)."""
        assets = [area for uuid in self.connected if uuid not in owner and isinstance(area := self.areas[uuid], Asset)]
        markets = [
            area for uuid in self.registered if uuid not in owner and isinstance(area := self.areas[uuid], MarketArea)
        ]
        return assets, markets

    def selection_problem(self, device_uuid: str) -> str:
        """Why an aggregator may not select ``device_uuid``; "" when it may."""
        area = self.areas.get(device_uuid)
        if area is None:
            return f"Device {device_uuid} does not exist"
        if not area.externally_controllable:
            return f"Device {device_uuid} does not accept external connections"
        return ""
