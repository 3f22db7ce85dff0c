"""The GraphQL queries the SDK sends (REST.md 3.5), served with graphql-core's executor."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from graphql import build_schema, graphql_sync

SCHEMA = build_schema("""
type Query {
  readConfiguration(uuid: String!): Configuration
  aggregatorsList: [AggregatorInfo!]!
}
type Configuration { uuid: String!, name: String, scenarioData: ScenarioData }
type ScenarioData { latest: ScenarioVersion }
type ScenarioVersion { serialized: String }
type AggregatorInfo { configUuid: String!, name: String!, devicesList: [DeviceRef!]! }
type DeviceRef { deviceUuid: String! }
""")


def execute(query: str, variables: dict[str, Any] | None, operation_name: str | None,
            configuration: Callable[[str], dict[str, Any] | None],
            aggregators: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """Run ``query``; ``configuration(uuid)`` gives {uuid, name, tree} or None when unknown."""

    def read_configuration(_info: Any, uuid: str) -> dict[str, Any] | None:
        found = configuration(uuid)
        if found is None:
            return None
        return {"uuid": found["uuid"], "name": found["name"],
                "scenarioData": {"latest": {"serialized": json.dumps(found["tree"])}}}

    root = {"readConfiguration": read_configuration, "aggregatorsList": lambda _info: aggregators()}
    result = graphql_sync(SCHEMA, query, root_value=root, variable_values=variables, operation_name=operation_name)
    response: dict[str, Any] = {"data": result.data}
    if result.errors:
        response["errors"] = [error.formatted for error in result.errors]
    return response
