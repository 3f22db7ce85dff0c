"""Redis channel names of the GSy Exchange protocol (REDIS.md 2).

The configuration id is empty locally, which yields the double slash of
``external-aggregator//batch_commands`` (REDIS.md 1.1).
"""

from gsy_e_sdk.wire import catalogue

AGGREGATOR_COMMANDS = "aggregator-commands"
AGGREGATOR_COMMANDS_LEGACY = "aggregator"
AGGREGATOR_RESPONSE = "aggregator-response"
HEARTBEAT = "gsy-e-heartbeat/"

# Direct-mode commands (REDIS.md 9), from the one catalogue of commands.
ASSET_DIRECT_COMMANDS = catalogue.names(catalogue.Target.ASSET, self_answered=False)
MARKET_DIRECT_COMMANDS = catalogue.names(catalogue.Target.MARKET, self_answered=False)
# Forecast channels answer on the request channel itself (REDIS.md 2.1 quirk).
SELF_ANSWERED_COMMANDS = tuple(spec.name for spec in catalogue.CATALOGUE if spec.self_answered)
SIMULATION_CONTROL_COMMANDS = ("pause", "resume", "stop")


def register(prefix: str) -> str:
    return f"{prefix}/register_participant"


def register_response(prefix: str) -> str:
    return f"{prefix}/response/register_participant"


def unregister(prefix: str) -> str:
    return f"{prefix}/unregister_participant"


def unregister_response(prefix: str) -> str:
    return f"{prefix}/response/unregister_participant"


def area_command(prefix: str, command: str) -> str:
    return f"{prefix}/{command}"


def area_command_response(prefix: str, command: str) -> str:
    if command in SELF_ANSWERED_COMMANDS:
        return f"{prefix}/{command}"
    return f"{prefix}/response/{command}"


def area_event(prefix: str, event: str) -> str:
    return f"{prefix}/events/{event}"


def area_wildcard(prefix: str) -> str:
    return f"{prefix}/*"


def batch_commands(config_id: str = "") -> str:
    return f"external-aggregator/{config_id}/batch_commands"


def batch_response(aggregator_uuid: str, config_id: str = "") -> str:
    return f"external-aggregator/{config_id}/{aggregator_uuid}/response/batch_commands"


def aggregator_events(aggregator_uuid: str, config_id: str = "") -> str:
    return f"external-aggregator/{config_id}/{aggregator_uuid}/events/all"


def simulation_control(command: str, simulation_id: str = "") -> str:
    return f"{simulation_id}/{command}"


def simulation_control_response(command: str, simulation_id: str = "") -> str:
    return f"{simulation_id}/response/{command}"
