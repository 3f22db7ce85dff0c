"""Aggregator endpoints (REST.md 3.3) and the configuration registry (3.4).

Aggregators belong to the user who created them; a device selected by one belongs to that
user too (``Facade.usable_area``). Mutating requests are idempotent per (user, transaction id):
a retry gets the first answer again, and one user's id never returns another user's answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gsy_e_sdk.wire import rest_paths as paths
from gsy_local_exchange.batches import command_count
from gsy_local_exchange.http import models as m
from gsy_local_exchange.http.areas import accepted
from gsy_local_exchange.http.bodies import ApiError, json_response
from gsy_local_exchange.http.core import Facade
from gsy_local_exchange.http.registry import registry_tree
from gsy_local_exchange.http.state import AggregatorRecord, FacadeState


class Aggregators:
    def __init__(self, facade: Facade) -> None:
        self.facade = facade
        self.relay = facade.relay

    def list(self, user: str, params: dict, _body: Any) -> Response:
        state = self.facade.simulation(params["sim"])
        return json_response([{"name": r.name, "uuid": r.uuid} for r in state.aggregators(user)])

    def _idempotent(
        self, state: FacadeState, user: str, body: m.Body, work: Callable[[str], tuple[int, Any]]
    ) -> Response:
        """Answer a re-sent request (same user and transaction id) as before instead of applying it again."""
        transaction_id = self.relay.transaction_id(body.model_dump())
        previous = state.answered(user, transaction_id) if body.transaction_id else None
        if previous is None:
            previous = work(transaction_id)
            state.remember(user, transaction_id, *previous)
        status, answer = previous
        return json_response(answer, status)

    def create(self, user: str, params: dict, body: m.CreateAggregator) -> Response:
        state = self.facade.simulation(params["sim"])

        def create(transaction_id: str) -> tuple[int, Any]:
            aggregator_uuid = str(uuid.uuid4())  # REST.md 7: a fresh uuid, not the transaction id
            response = self.relay.aggregator_command(
                {"name": body.name, "type": "CREATE", "transaction_id": aggregator_uuid}
            )
            if response.get("status") == "error":
                return 409, {"error": f"The exchange refused to create aggregator {body.name}"}
            state.add_aggregator(AggregatorRecord(aggregator_uuid, body.name, user))
            return 200, {"name": body.name, "uuid": aggregator_uuid, "transaction_id": transaction_id}

        return self._idempotent(state, user, body, create)

    def delete(self, user: str, params: dict, body: m.AggregatorRef) -> Response:
        state = self.facade.simulation(params["sim"])

        def delete(transaction_id: str) -> tuple[int, Any]:
            record = self.facade.own_aggregator(state, user, body.aggregator_uuid)
            response = self.relay.aggregator_command(
                {
                    "name": record.name,
                    "aggregator_uuid": record.uuid,
                    "type": "DELETE",
                    "transaction_id": transaction_id,
                }
            )
            state.remove_aggregator(record.uuid)
            self.relay.forget_aggregator(record.uuid)
            return 200, response

        return self._idempotent(state, user, body, delete)

    def select(self, user: str, params: dict, body: m.Selection) -> Response:
        state = self.facade.simulation(params["sim"])

        def select(transaction_id: str) -> tuple[int, Any]:
            record = self.facade.own_aggregator(state, user, body.aggregator_uuid)
            node, current = self.facade.usable_area(state, user, body.device_uuid)
            answer = {
                "status": "SELECTED",
                "aggregator_uuid": record.uuid,
                "device_uuid": node.uuid,
                "transaction_id": transaction_id,
            }
            if current == record.uuid:
                return 200, answer  # selecting again what is already selected is not an error here
            # Subscribed before the exchange hears of it: the selection may start the run, and
            # the relay forwards it to the socket ahead of the run's first events.
            self.relay.watch_aggregator(record.uuid)
            response = self.relay.aggregator_command(
                {
                    "aggregator_uuid": record.uuid,
                    "device_uuid": node.uuid,
                    "type": "SELECT",
                    "transaction_id": transaction_id,
                }
            )
            if response.get("status") != "SELECTED":
                return 409, {
                    "error": response.get("msg") or "The exchange refused the selection",
                    **answer,
                    "status": "error",
                }
            state.select(record.uuid, node.uuid)
            state.release_claim(node.uuid)  # the aggregator's owner controls it from now on
            return 200, answer

        return self._idempotent(state, user, body, select)

    def unselect(self, user: str, params: dict, body: m.Selection) -> Response:
        state = self.facade.simulation(params["sim"])

        def unselect(transaction_id: str) -> tuple[int, Any]:
            record = self.facade.own_aggregator(state, user, body.aggregator_uuid)
            response = self.relay.aggregator_command(
                {
                    "aggregator_uuid": record.uuid,
                    "device_uuid": body.device_uuid,
                    "type": "UNSELECT",
                    "transaction_id": transaction_id,
                }
            )
            if response.get("status") != "UNSELECTED":
                return 409, {"error": response.get("msg") or "The exchange refused to unselect", **response}
            state.unselect(record.uuid, body.device_uuid)
            return 200, response

        return self._idempotent(state, user, body, unselect)

    def batch(self, user: str, params: dict, body: m.Batch) -> Response:
        state = self.facade.simulation(params["sim"])
        record = self.facade.own_aggregator(state, user, body.aggregator_uuid)
        count, limit = command_count(body.batch_commands), self.facade.limits.max_batch_commands
        if count > limit:
            raise ApiError(
                400,
                f"Invalid field 'batch_commands': {count} commands, at most {limit} per request "
                "(facade option --http-max-batch-commands); send them in smaller batches.",
                limit=limit,
            )
        transaction_id = self.relay.transaction_id(body.model_dump())
        self.relay.send_batch(record.uuid, body.batch_commands, transaction_id)
        return accepted(transaction_id)

    def registry(self, user: str, params: dict, _body: Any) -> Response:
        """Other users' aggregator names are not disclosed, and their devices are not ``registered``."""
        state = self.facade.simulation(params["sim"])
        mine = {r.uuid: r.name for r in state.aggregators(user)}
        owners = state.owners()
        names = {device: mine[aggregator] for device, aggregator in owners.items() if aggregator in mine}
        others = {device for device, aggregator in owners.items() if aggregator not in mine}
        others |= {device for device, claimant in state.claims().items() if claimant != user}
        return json_response(registry_tree(self.relay.descriptor().root, names, others))


def aggregator_routes(facade: Facade) -> list[Route]:
    aggregators = Aggregators(facade)
    base = paths.AGGREGATOR_API
    batch_limit = facade.limits.max_batch_body_bytes
    return [
        Route(base + paths.LIST_AGGREGATORS, facade.endpoint(m.Body, aggregators.list), methods=["GET"]),
        Route(
            base + paths.CREATE_AGGREGATOR, facade.endpoint(m.CreateAggregator, aggregators.create), methods=["POST"]
        ),
        Route(base + paths.DELETE_AGGREGATOR, facade.endpoint(m.AggregatorRef, aggregators.delete), methods=["POST"]),
        Route(base + paths.SELECT_AGGREGATOR, facade.endpoint(m.Selection, aggregators.select), methods=["POST"]),
        Route(base + paths.UNSELECT_AGGREGATOR, facade.endpoint(m.Selection, aggregators.unselect), methods=["POST"]),
        Route(base + paths.BATCH_COMMANDS, facade.endpoint(m.Batch, aggregators.batch, batch_limit), methods=["POST"]),
        Route(
            paths.CONFIGURATION + paths.REGISTRY,
            facade.endpoint(m.Body, aggregators.registry),
            methods=["GET"],
        ),
    ]
