"""Reading an event's ``grid_tree``: nodes by uuid, asset kinds, fees to the root. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def asset_kind(info: dict[str, Any]) -> str | None:
    """Kinds are recognised by key presence, as REDIS.md 7.3 prescribes."""
    if "used_storage" in info:
        return "Storage"
    if "available_energy_kWh" in info and "energy_requirement_kWh" in info:
        return "SmartMeter"
    if "available_energy_kWh" in info:
        return "PV"
    if "energy_requirement_kWh" in info:
        return "Load"
    return None


@dataclass
class TreeIndex:
    nodes: dict[str, dict] = field(default_factory=dict)
    parent: dict[str, str | None] = field(default_factory=dict)
    _fees: dict[str, float] = field(default_factory=dict)

    def fee_to_root(self, area_uuid: str) -> float:
        """Sum of current fees of the markets from the area's parent up to the root (ct/kWh)."""
        if area_uuid in self._fees:
            return self._fees[area_uuid]
        total = 0.0
        current = self.parent.get(area_uuid)
        while current is not None:
            fee = self.nodes[current].get("current_market_fee")
            total += float(fee) if isinstance(fee, (int, float)) else 0.0
            current = self.parent.get(current)
        self._fees[area_uuid] = total
        return total


def index_tree(tree: dict[str, Any]) -> TreeIndex:
    index = TreeIndex()
    stack: list[tuple[str, dict, str | None]] = [(uuid, node, None) for uuid, node in tree.items()]
    while stack:
        uuid, node, parent = stack.pop()
        index.nodes[uuid] = node
        index.parent[uuid] = parent
        for child_uuid, child in (node.get("children") or {}).items():
            stack.append((child_uuid, child, uuid))
    return index
