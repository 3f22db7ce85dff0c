"""Grid-tree helpers and log formatters used by clients and scripts (SDK_API.md 7).

The REST helpers of that section (JWT, GraphQL, domain names) arrive with the REST clients.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class AreaNotFoundException(Exception):
    pass


# Grid tree --------------------------------------------------------------------------------------

def flatten_info_dict(indict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{uuid: node}`` for every node of a ``grid_tree`` (the node dicts themselves, not copies)."""
    flat: dict[str, dict[str, Any]] = {}
    stack = [indict or {}]
    while stack:
        for uuid, node in stack.pop().items():
            flat[uuid] = node
            if isinstance(node, dict) and node.get("children"):
                stack.append(node["children"])
    return flat


def buffer_grid_tree_info(function: Callable) -> Callable:
    """Decorator for ``_on_*`` event handlers: store the event's grid tree on ``self`` first."""
    @functools.wraps(function)
    def wrapper(self, message: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.latest_grid_tree = message["grid_tree"]
        self.latest_grid_tree_flat = flatten_info_dict(self.latest_grid_tree)
        return function(self, message, *args, **kwargs)
    return wrapper


def logging_decorator(command_name: str) -> Callable[[Callable], Callable]:
    """Debug-log a command's arguments and return value."""
    def decorator(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            logger.debug("Sending command %s with arguments %s %s", command_name, args[1:], kwargs)
            result = function(*args, **kwargs)
            logger.debug("Command %s returned %s", command_name, result)
            return result
        return wrapper
    return decorator


def get_assets_name(registry: dict[str, Any]) -> dict[str, list[str]]:
    """Names of the registered nodes of a configuration registry (REST.md 3.4), by kind.

    ``{}`` for an empty registry. Kinds beyond the four standard buckets get a bucket of their
    own (the original raised ``KeyError`` for them).
    """
    if not registry:
        return {}
    names: dict[str, list[str]] = {"Area": [], "Load": [], "PV": [], "Storage": []}

    def visit(node: dict[str, Any]) -> None:
        kind = node.get("type")
        if node.get("registered") is True:
            names.setdefault(kind or "Area", []).append(node.get("name"))
        for child in node.get("children") or []:
            visit(child)

    visit(registry)
    return names


def create_area_name_uuid_mapping_from_tree_info(
        latest_grid_tree_flat: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """``{area_name: [uuid, ...]}``; unlike the original, every uuid of a repeated name is kept."""
    mapping: dict[str, list[str]] = {}
    for uuid, node in latest_grid_tree_flat.items():
        name = node.get("area_name") if isinstance(node, dict) else None
        if name is not None:
            mapping.setdefault(name, []).append(uuid)
    return mapping


def get_uuid_from_area_name_in_tree_dict(area_name_uuid_mapping: dict[str, list[str]],
                                         name: str) -> str:
    uuids = area_name_uuid_mapping.get(name)
    if not uuids:
        raise ValueError(f"Could not find {name} in tree")
    if len(uuids) > 1:
        raise ValueError(f"There are multiple areas named {name} in the tree")
    return uuids[0]


def get_name_from_area_name_uuid_mapping(area_name_uuid_mapping: dict[str, list[str]],
                                         asset_uuid: str) -> str | None:
    for name, uuids in area_name_uuid_mapping.items():
        if asset_uuid in uuids:
            return name
    return None


def get_area_uuid_from_area_name(serialized_scenario: dict[str, Any], area_name: str) -> str | None:
    """Depth-first search of a ``{"name", "uuid", "children"}`` scenario tree."""
    if serialized_scenario.get("name") == area_name:
        return serialized_scenario.get("uuid")
    for child in serialized_scenario.get("children") or []:
        found = get_area_uuid_from_area_name(child, area_name)
        if found is not None:
            return found
    return None


# Log formatters ---------------------------------------------------------------------------------

def log_bid_offer_confirmation(message: dict[str, Any]) -> None:
    """Log a successful ``offer``/``bid`` response (the order itself is a JSON string)."""
    command = message.get("command")
    if message.get("status") != "ready" or command not in ("offer", "bid"):
        return
    try:
        order = json.loads(message[command])
        trader = order["seller" if command == "offer" else "buyer"]
        trader_name = trader["name"] if isinstance(trader, dict) else trader
        rate = order["energy_rate"]
        energy = order["energy"]
    except (KeyError, TypeError, ValueError):
        logger.debug("Unexpected %s confirmation: %s", command, message)
        return
    logger.info("[%s] %s %s %s kWh at %s cts/kWh", message.get("market_type", ""), trader_name,
                "OFFERED" if command == "offer" else "BID", energy, rate)


def log_deleted_bid_offer_confirmation(message: dict[str, Any], command_type: str | None = None,
                                       bid_offer_id: str | None = None,
                                       asset_name: str | None = None) -> None:
    command = command_type or message.get("command")
    if message.get("status") != "ready" or command not in ("offer_delete", "bid_delete"):
        return
    kind = "offer" if command == "offer_delete" else "bid"
    deleted = message.get(f"deleted_{kind}s") or ([bid_offer_id] if bid_offer_id else [])
    logger.info("%s deleted %s(s): %s", asset_name or message.get("area_uuid", ""), kind,
                ", ".join(map(str, deleted)) or "none")


def log_trade_info(message: dict[str, Any]) -> None:
    """Log one element of a ``trade_list``."""
    try:
        energy = message["traded_energy"]
        rate = round(message["trade_price"] / energy, 2)
    except (KeyError, TypeError, ZeroDivisionError):
        logger.debug("Unexpected trade: %s", message)
        return
    if message.get("buyer") == "anonymous":
        logger.info("%s SOLD %s kWh at %s cents/kWh", message.get("seller"), energy, rate)
    else:
        logger.info("%s BOUGHT %s kWh at %s cents/kWh", message.get("buyer"), energy, rate)


def log_grid_fees_information(market_names: list[str], current_market_fee: dict[str, Any],
                              next_market_fee: dict[str, Any]) -> None:
    rows = [f"{'market':<30} {'current fee':>12} {'next fee':>12}"]
    rows += [f"{name:<30} {current_market_fee.get(name)!s:>12} {next_market_fee.get(name)!s:>12}"
             for name in market_names]
    logger.info("Grid fees (ct/kWh):\n%s", "\n".join(rows))
