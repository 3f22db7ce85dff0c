"""The GraphQL queries the SDK sends (REST.md 3.5), served with graphql-core, within bounds.

A query is refused with a GraphQL error before anything resolves when it is longer than
``MAX_TOKENS`` tokens, selects more than ``MAX_FIELDS`` fields (fragments counted each time
they are spread), more than ``MAX_ROOT_FIELDS`` root fields (each one resolves a whole scenario
or aggregator list, so aliases of them multiply the work), or nests deeper than ``MAX_DEPTH``.
The SDK's queries have one root field and under 20 tokens. Introspection is off unless enabled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    parse,
    specified_rules,
    validate,
)
from graphql.language import DocumentNode
from graphql.validation import NoSchemaIntrospectionCustomRule

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

MAX_TOKENS = 500
MAX_FIELDS = 100
MAX_ROOT_FIELDS = 4
MAX_DEPTH = 8


class _TooCostly(Exception):
    """The reason a query is refused before it runs."""


def execute(
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    configuration: Callable[[str], dict[str, Any] | None],
    aggregators: Callable[[], list[dict[str, Any]]],
    introspection: bool = False,
) -> dict[str, Any]:
    """Run ``query``; ``configuration(uuid)`` gives {uuid, name, serialized} or None when unknown."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS, no_location=True)
    except GraphQLError as error:
        return _errors([error.message])
    except RecursionError:
        return _errors(["The query is nested too deeply."])
    problem = _cost_problem(document)
    if problem:
        return _errors([problem])
    rules = list(specified_rules) if introspection else [*specified_rules, NoSchemaIntrospectionCustomRule]
    invalid = validate(SCHEMA, document, rules)
    if invalid:
        return _errors([error.message for error in invalid])

    def read_configuration(_info: Any, uuid: str) -> dict[str, Any] | None:
        found = configuration(uuid)
        if found is None:
            return None
        return {
            "uuid": found["uuid"],
            "name": found["name"],
            "scenarioData": {"latest": {"serialized": found["serialized"]}},
        }

    root = {"readConfiguration": read_configuration, "aggregatorsList": lambda _info: aggregators()}
    result = execute_sync(SCHEMA, document, root_value=root, variable_values=variables, operation_name=operation_name)
    response: dict[str, Any] = {"data": result.data}
    if result.errors:
        response["errors"] = [error.formatted for error in result.errors]
    return response


def _errors(messages: list[str]) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message} for message in messages]}


def _cost_problem(document: DocumentNode) -> str | None:
    """Why ``document`` would cost too much, or None. Fragments count as often as they are spread
    (but are measured once), so nested spreads cannot multiply the work unseen."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    measured: dict[str, tuple[int, int, int]] = {}

    def measure(selections: SelectionSetNode, visiting: frozenset[str]) -> tuple[int, int, int]:
        """(fields, levels of fields, fields at the top level) of a selection set."""
        fields = levels = top = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                inner, below, _ = measure(selection.selection_set, visiting) if selection.selection_set else (0, 0, 0)
                fields, levels, top = fields + 1 + inner, max(levels, below + 1), top + 1
            else:
                if isinstance(selection, InlineFragmentNode):
                    part = measure(selection.selection_set, visiting)
                elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
                    name = selection.name.value
                    if name in visiting:
                        continue  # a cycle: a validation error, reported later
                    if name not in measured:
                        measured[name] = measure(fragments[name].selection_set, visiting | {name})
                    part = measured[name]
                else:
                    continue  # an unknown fragment: a validation error, reported later
                fields, levels, top = fields + part[0], max(levels, part[1]), top + part[2]
            if fields > MAX_FIELDS:
                raise _TooCostly(f"The query selects more than {MAX_FIELDS} fields.")
            if levels > MAX_DEPTH:
                raise _TooCostly(f"The query nests deeper than {MAX_DEPTH} levels.")
        return fields, levels, top

    try:
        fields = roots = 0
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                measured_fields, _, top = measure(definition.selection_set, frozenset())
                fields, roots = fields + measured_fields, roots + top
        if fields > MAX_FIELDS:
            raise _TooCostly(f"The query selects more than {MAX_FIELDS} fields.")
        if roots > MAX_ROOT_FIELDS:
            raise _TooCostly(f"The query has more than {MAX_ROOT_FIELDS} root fields (aliases included).")
    except _TooCostly as problem:
        return str(problem)
    except RecursionError:
        return "The query is nested too deeply."
    return None
