"""The Celery task behind ``gsy-e-sdk enqueue``: an operator command run on the target's shard.

Its answer (the exchange's response where there is one) is pushed to a Redis list the operator
may wait on. Orders and fees are sent as batches under a transaction id derived from the command
id, so a redelivered command task is answered again by the exchange, never applied twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import shared_task

from gsy_e_sdk.commands import checked
from gsy_e_sdk.wire.command_params import DeleteBid, DeleteOffer, GridFees
from orchestrator.operator import TASK_NAME, OperatorCommand
from orchestrator.worker_context import WorkerContext, context
from workers.commands import ORDERS
from workers.tasks import handle_event

logger = logging.getLogger(__name__)

# Which open orders pausing an asset withdraws, by kind (unknown kinds: both).
_WITHDRAW: dict[str, tuple[type[DeleteOffer] | type[DeleteBid], ...]] = {"PV": (DeleteOffer,), "Load": (DeleteBid,)}


def _transaction_id(command: OperatorCommand) -> str:
    """One id per (command, slice): the exchange applies each slice's batch once, and each one.

    Unpredictable because the command id is random (uuid4)."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"gsy-operator:{command.id}:{command.aggregator_uuid}:{command.slice}"))


def execute(command: OperatorCommand, ctx: WorkerContext, worker: str = "") -> dict[str, Any]:
    answer: dict[str, Any] = {
        "command": command.kind,
        "aggregator": command.aggregator,
        "devices": sorted(command.devices.values()),
    }
    devices = list(command.devices)
    if command.kind == "order":
        (device,) = devices
        if command.side is None or command.energy is None or command.rate is None:
            raise ValueError("an order needs side, energy and rate")
        order = checked(
            ORDERS[command.side],
            energy=command.energy,
            price=command.rate * command.energy,
            replace_existing=command.replace_existing,
        )
        batch = {device: [order.wire()]}
        answer["response"] = ctx.submit(command.aggregator_uuid, batch, _transaction_id(command), wait=True)
    elif command.kind == "grid_fee":
        (market,) = devices
        batch = {market: [checked(GridFees, fee_const=command.fee).wire()]}
        answer["response"] = ctx.submit(command.aggregator_uuid, batch, _transaction_id(command), wait=True)
    elif command.kind in ("pause", "resume"):
        ctx.store.update_controls(devices, paused=command.kind == "pause")
        if command.kind == "pause":
            kinds = ctx.store.meta("kinds")
            batch = {
                device: [
                    withdraw().wire() for withdraw in _WITHDRAW.get(kinds.get(device, ""), (DeleteOffer, DeleteBid))
                ]
                for device in devices
            }
            answer["response"] = ctx.submit(command.aggregator_uuid, batch, _transaction_id(command), wait=True)
    elif command.kind == "set_param":
        ctx.store.update_controls(devices, params=command.params)
        answer["params"] = command.params
    elif command.kind == "resync":
        last = ctx.store.last_slice(command.aggregator_uuid, command.slice or 0)
        if last is None:
            answer["error"] = "no market or tick event handled for this slice yet"
        else:
            answer["result"] = handle_event(last, worker, transaction_id=_transaction_id(command))
    answer["status"] = "error" if "error" in answer or _rejected(answer.get("response")) else "done"
    return answer


def _rejected(response: dict[str, Any] | None) -> bool:
    if not response:
        return False
    return any(
        entry.get("status") != "ready" for entries in response.get("responses", {}).values() for entry in entries
    )


@shared_task(name=TASK_NAME, bind=True)
def operator_command(self, payload: dict[str, Any]) -> dict[str, Any]:
    command = OperatorCommand.model_validate(payload)
    ctx = context()
    try:
        answer = execute(command, ctx, self.request.hostname or "")
    except Exception as exc:
        logger.exception("operator command %s (%s) failed", command.id, command.kind)
        answer = {"command": command.kind, "status": "error", "error": str(exc)}
    ctx.store.push_result(command.id, answer)
    return answer
