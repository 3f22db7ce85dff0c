"""Views of the grid for REST clients: the configuration registry (REST.md 3.4) and the
serialized scenario of GraphQL ``readConfiguration`` (REST.md 3.5). Pure functions."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gsy_local_exchange.descriptor import Node


def registry_tree(node: Node, aggregator_names: dict[str, str], taken: Collection[str] = ()) -> dict[str, Any]:
    """Externally controllable nodes are ``registered: true`` for the caller unless ``taken`` (by
    another user); ``aggregator_names`` holds only the caller's own aggregators."""
    controllable = node.prefix is not None
    entry: dict[str, Any] = {
        "name": node.name,
        "type": node.type,
        "uuid": node.uuid,
        "attributes": None,
        "registered": (node.uuid not in taken) if controllable else None,
        "aggregator_name": aggregator_names.get(node.uuid),
    }
    if node.is_market:
        entry["children"] = [registry_tree(child, aggregator_names, taken) for child in node.children or ()]
    return entry


def scenario_tree(node: Node) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": node.name, "uuid": node.uuid, "type": node.type}
    if node.is_market:
        entry["children"] = [scenario_tree(child) for child in node.children or ()]
    return entry
