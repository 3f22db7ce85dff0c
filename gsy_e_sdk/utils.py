"""Helpers used by clients and scripts (SDK_API.md 7): grid tree, log formatters, REST.

The REST helpers (domain names from the environment, JWT, GraphQL, endpoint prefixes, the
simulation config file) send every request through ``gsy_e_sdk.rest_session`` and get their
token from the process's shared ``gsy_e_sdk.jwt_auth`` provider.
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gsy_e_sdk import rest_session
from gsy_e_sdk.constants import API_CLIENT_SIMULATION_ID, DEFAULT_DOMAIN_NAME, DEFAULT_WEBSOCKET_DOMAIN
from gsy_e_sdk.jwt_auth import token_provider
from gsy_e_sdk.version_check import validate_client_up_to_date  # noqa: F401 - public here in the original SDK
from gsy_e_sdk.wire import json_codec
from gsy_e_sdk.wire import rest_paths as paths
from gsy_e_sdk.wire.grid_tree import index_tree

logger = logging.getLogger(__name__)

DOMAIN_NAME_ENV = "API_CLIENT_DOMAIN_NAME"
WEBSOCKET_DOMAIN_NAME_ENV = "API_CLIENT_WEBSOCKET_DOMAIN_NAME"
SIMULATION_ID_ENV = "API_CLIENT_SIMULATION_ID"


class AreaNotFoundException(Exception):
    pass


# Grid tree --------------------------------------------------------------------------------------


def flatten_info_dict(indict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{uuid: node}`` for every node of a ``grid_tree`` (the node dicts themselves, not copies)."""
    return index_tree(indict).nodes


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


def get_assets_name(registry: dict[str, Any]) -> dict[str, list[str | None]]:
    """Names of the registered nodes of a configuration registry (REST.md 3.4), by kind.

    ``{}`` for an empty registry. Kinds beyond the four standard buckets get a bucket of their
    own (the original raised ``KeyError`` for them).
    """
    if not registry:
        return {}
    names: dict[str, list[str | None]] = {"Area": [], "Load": [], "PV": [], "Storage": []}

    def visit(node: dict[str, Any]) -> None:
        kind = node.get("type")
        if node.get("registered") is True:
            names.setdefault(kind or "Area", []).append(node.get("name"))
        for child in node.get("children") or []:
            visit(child)

    visit(registry)
    return names


def create_area_name_uuid_mapping_from_tree_info(
    latest_grid_tree_flat: dict[str, dict[str, Any]],
) -> dict[str, list[str]]:
    """``{area_name: [uuid, ...]}``; unlike the original, every uuid of a repeated name is kept."""
    mapping: dict[str, list[str]] = {}
    for uuid, node in latest_grid_tree_flat.items():
        name = node.get("area_name") if isinstance(node, dict) else None
        if name is not None:
            mapping.setdefault(name, []).append(uuid)
    return mapping


def get_uuid_from_area_name_in_tree_dict(area_name_uuid_mapping: dict[str, list[str]], name: str) -> str:
    uuids = area_name_uuid_mapping.get(name)
    if not uuids:
        raise ValueError(f"Could not find {name} in tree")
    if len(uuids) > 1:
        raise ValueError(f"There are multiple areas named {name} in the tree")
    return uuids[0]


def get_name_from_area_name_uuid_mapping(area_name_uuid_mapping: dict[str, list[str]], asset_uuid: str) -> str | None:
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
        order = json_codec.loads(message[command])
        trader = order["seller" if command == "offer" else "buyer"]
        trader_name = trader["name"] if isinstance(trader, dict) else trader
        rate = order["energy_rate"]
        energy = order["energy"]
    except (KeyError, TypeError, ValueError):
        logger.debug("Unexpected %s confirmation: %s", command, message)
        return
    logger.info(
        "[%s] %s %s %s kWh at %s cts/kWh",
        message.get("market_type", ""),
        trader_name,
        "OFFERED" if command == "offer" else "BID",
        energy,
        rate,
    )


def log_deleted_bid_offer_confirmation(
    message: dict[str, Any],
    command_type: str | None = None,
    bid_offer_id: str | None = None,
    asset_name: str | None = None,
) -> None:
    command = command_type or message.get("command")
    if message.get("status") != "ready" or command not in ("offer_delete", "bid_delete"):
        return
    kind = "offer" if command == "offer_delete" else "bid"
    deleted = message.get(f"deleted_{kind}s") or ([bid_offer_id] if bid_offer_id else [])
    logger.info(
        "%s deleted %s(s): %s", asset_name or message.get("area_uuid", ""), kind, ", ".join(map(str, deleted)) or "none"
    )


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


def log_grid_fees_information(
    market_names: list[str], current_market_fee: dict[str, Any], next_market_fee: dict[str, Any]
) -> None:
    rows = [f"{'market':<30} {'current fee':>12} {'next fee':>12}"]
    rows += [
        f"{name:<30} {current_market_fee.get(name)!s:>12} {next_market_fee.get(name)!s:>12}" for name in market_names
    ]
    logger.info("Grid fees (ct/kWh):\n%s", "\n".join(rows))


# REST: settings from the environment (REST.md 6) ------------------------------------------------


def domain_name_from_env() -> str:
    return os.environ.get(DOMAIN_NAME_ENV) or DEFAULT_DOMAIN_NAME


def websocket_domain_name_from_env() -> str:
    return os.environ.get(WEBSOCKET_DOMAIN_NAME_ENV) or DEFAULT_WEBSOCKET_DOMAIN


def simulation_id_from_env() -> str:
    return os.environ.get(SIMULATION_ID_ENV) or API_CLIENT_SIMULATION_ID


def get_sim_id_and_domain_names() -> tuple[str, str, str]:
    """``(simulation_id, domain_name, websocket_domain_name)`` from the environment."""
    return simulation_id_from_env(), domain_name_from_env(), websocket_domain_name_from_env()


def get_aggregator_prefix(domain_name: str, simulation_id: str | None = None) -> str:
    simulation_id = simulation_id if simulation_id is not None else simulation_id_from_env()
    return paths.url(domain_name, paths.AGGREGATOR_API, sim=simulation_id)


def get_configuration_prefix(domain_name: str, simulation_id: str | None = None) -> str:
    simulation_id = simulation_id if simulation_id is not None else simulation_id_from_env()
    return paths.url(domain_name, paths.CONFIGURATION, sim=simulation_id)


# REST: JWT and GraphQL (REST.md 1, 3.5) ---------------------------------------------------------


def retrieve_jwt_key_from_server(domain_name: str) -> str | None:
    """A JWT for env ``API_CLIENT_USERNAME``/``API_CLIENT_PASSWORD``; None if login fails.

    The token is the process's shared one for ``domain_name`` (one login per process).
    """
    return token_provider(domain_name).token()


def execute_graphql_request(
    domain_name: str,
    query: str,
    headers: dict[str, str] | None = None,
    url: str | None = None,
    authenticate: bool = True,
) -> Any:
    """POST ``{"query": query}`` to ``url`` or ``{domain}/graphql/``; the parsed JSON or None."""
    auth = None
    if authenticate:
        auth = token_provider(domain_name)
        if auth.token() is None:
            return None
    return rest_session.request_json(
        "POST",
        url or paths.url(domain_name, paths.GRAPHQL),
        {"query": query},
        auth=auth,
        add_transaction_id=False,
        headers=headers,
    )


def _read_scenario(collab_id: str, domain_name: str) -> tuple[dict[str, Any] | None, Any]:
    """(scenario tree, GraphQL errors) of a configuration."""
    query = f'query {{ readConfiguration(uuid: "{collab_id}") {{ scenarioData {{ latest {{ serialized }} }} }} }}'
    data = execute_graphql_request(domain_name, query)
    if not isinstance(data, dict):
        return None, None
    if data.get("errors"):
        return None, data["errors"]
    try:
        serialized = data["data"]["readConfiguration"]["scenarioData"]["latest"]["serialized"]
        return json_codec.loads(serialized), None
    except (KeyError, TypeError, ValueError):
        logger.error("Unexpected readConfiguration answer for %s: %.300s", collab_id, data)
        return None, None


def get_area_uuid_from_area_name_and_collaboration_id(collab_id: str, area_name: str, domain_name: str) -> str:
    """The uuid of the first area named ``area_name`` in the configuration's scenario."""
    scenario, _ = _read_scenario(collab_id, domain_name)
    area_uuid = get_area_uuid_from_area_name(scenario or {}, area_name)
    if area_uuid is None:
        raise AreaNotFoundException(
            f"Area with name {area_name} is not part of the collaboration with UUID {collab_id}"
        )
    return area_uuid


def get_area_uuid_and_name_mapping_from_simulation_id(collab_id: str, domain_name: str | None = None) -> Any:
    """``{area_name: uuid}`` of the whole scenario (a repeated name: the last one wins)."""
    scenario, errors = _read_scenario(collab_id, domain_name or domain_name_from_env())
    if errors:
        message = errors[0].get("message") if isinstance(errors[0], dict) else errors[0]
        if isinstance(message, str):  # anything else is no literal either
            try:
                return ast.literal_eval(message)
            except (ValueError, SyntaxError, TypeError):
                pass
        logger.error("GraphQL error for configuration %s: %s", collab_id, message)
        return None
    mapping: dict[str, str | None] = {}
    stack = [scenario] if scenario else []
    while stack:
        node = stack.pop(0)
        if node.get("name") is not None:
            mapping[node["name"]] = node.get("uuid")
        stack[:0] = node.get("children") or []
    return mapping


def get_aggregators_list(domain_name: str | None = None) -> list[dict[str, Any]]:
    """The user's aggregators: ``[{"configUuid", "name", "devicesList": [{"deviceUuid"}]}]``."""
    query = "query { aggregatorsList { configUuid name  devicesList { deviceUuid } } }"
    data = execute_graphql_request(domain_name or domain_name_from_env(), query)
    try:
        return data["data"]["aggregatorsList"] or []
    except (KeyError, TypeError):
        logger.error("Could not list aggregators: %.300s", data)
        return []


def is_scm_canary_network(config: dict[str, Any]) -> bool:
    settings = config.get("settingsData") or {}
    return settings.get("spotMarketType") == "COEFFICIENTS"


def _is_running_canary_network(config: dict[str, Any]) -> bool:
    settings = config.get("settingsData") or {}
    return (
        config.get("type") == "CANARY_NETWORK"
        and config.get("resultsStatus") == "running"
        and settings.get("spotMarketType") in ("ONE_SIDED", "TWO_SIDED")
    )


def list_running_canary_networks_and_devices_with_live_data(domain_name: str, is_scm: bool = False) -> dict[str, Any]:
    """``{canary network uuid: forecastStreamAreaMapping}`` of running canary networks."""
    listing = "listScmCommunities" if is_scm else "listCanaryNetworks"
    query = (
        f"query {{ {listing} {{ configurations {{ uuid resultsStatus type "
        f"scenarioData {{ forecastStreamAreaMapping }} settingsData {{ spotMarketType }} }} }} }}"
    )
    data = execute_graphql_request(domain_name, query)
    try:
        configurations = data["data"][listing]["configurations"] or []
    except (KeyError, TypeError):
        logger.error("Could not list canary networks: %.300s", data)
        return {}
    wanted = is_scm_canary_network if is_scm else _is_running_canary_network
    return {
        config["uuid"]: (config.get("scenarioData") or {}).get("forecastStreamAreaMapping")
        for config in configurations
        if isinstance(config, dict) and wanted(config)
    }


# REST: the simulation config file (REST.md 5) ---------------------------------------------------


class SimulationConfigError(ValueError):
    """The simulation config file is unreadable or lacks a required key."""


class SimulationConfig(BaseModel):
    """The keys the platform's downloadable config file must have; others are kept."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)
    username: str
    name: str
    uuid: str
    domain_name: str
    web_socket_domain_name: str
    global_settings: dict[str, Any]
    registry: dict[str, Any]


def read_simulation_config_file(config_file_path: str | os.PathLike | None) -> dict[str, Any] | None:
    """The validated content of a simulation config file; None for a falsy path.

    Raises ``SimulationConfigError`` naming the file and the missing or malformed key.
    """
    if not config_file_path:
        return None
    path = Path(config_file_path)
    try:
        content = json.loads(path.read_text())
    except OSError as exc:
        raise SimulationConfigError(f"Cannot read simulation config file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SimulationConfigError(f"Simulation config file {path} is not JSON: {exc}") from None
    if not isinstance(content, dict):
        raise SimulationConfigError(f"Simulation config file {path} must hold a JSON object")
    try:
        SimulationConfig.model_validate(content)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "missing":
            raise SimulationConfigError(f"Simulation config file {path} is missing the required key '{key}'") from None
        raise SimulationConfigError(f"Simulation config file {path}: key '{key}': {error['msg']}") from None
    return content
