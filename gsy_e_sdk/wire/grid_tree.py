"""An event's ``grid_tree`` (REDIS.md 7.3), walked once: nodes by uuid, paths, fees, asset kinds. Pure.

The SDK's flat view (``flatten_info_dict``), its grid-fee calculation and the fleet's dispatcher
all read the tree through ``index_tree``. Nodes are the event's own dicts, not copies: at 10,000
assets a tree is megabytes per tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FEE_TYPES = ("current_market_fee", "last_market_fee")


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
    nodes: dict[str, Any] = field(default_factory=dict)  # uuid -> node (a dict, or whatever was sent)
    parent: dict[str, str | None] = field(default_factory=dict)
    _fees: dict[str, float | None] = field(default_factory=dict)

    def path(self, uuid: str) -> list[str]:
        """Uuids from the root down to ``uuid`` (inclusive)."""
        path = [uuid]
        current = self.parent.get(uuid)
        while current is not None:
            path.append(current)
            current = self.parent.get(current)
        path.reverse()
        return path

    def fee(self, uuid: str, fee_type: str = "current_market_fee") -> Any:
        """A market node's fee as sent (None when the node has none)."""
        node = self.nodes.get(uuid)
        return node.get(fee_type) if isinstance(node, dict) else None

    def fee_to_root(self, area_uuid: str) -> float | None:
        """Sum of current fees of the markets from the area's parent up to the root (ct/kWh).

        A market whose fee is ``null`` has none set (0). One without the key has no finished slot
        yet, so its fee is not known (REDIS.md 7.3): then the sum is None, because counting it as
        0 would price every first-slot bid below what energy from the root costs.
        """
        if area_uuid in self._fees:
            return self._fees[area_uuid]
        total: float | None = 0.0
        current = self.parent.get(area_uuid)
        while current is not None and total is not None:
            node = self.nodes.get(current)
            fee = node.get("current_market_fee") if isinstance(node, dict) else None
            if isinstance(node, dict) and "current_market_fee" not in node:
                total = None
            elif isinstance(fee, (int, float)) and not isinstance(fee, bool):
                total += float(fee)
            current = self.parent.get(current)
        self._fees[area_uuid] = total
        return total


def index_tree(tree: dict[str, Any] | None) -> TreeIndex:
    """Every node of ``{uuid: node}`` with its parent; children under each node's ``children``."""
    index = TreeIndex()
    stack: list[tuple[str, Any, str | None]] = [(uuid, node, None) for uuid, node in (tree or {}).items()]
    while stack:
        uuid, node, parent = stack.pop()
        index.nodes[uuid] = node
        index.parent[uuid] = parent
        children = node.get("children") if isinstance(node, dict) else None
        if isinstance(children, dict):
            stack.extend((child_uuid, child, uuid) for child_uuid, child in children.items())
    return index
