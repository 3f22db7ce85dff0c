"""Sending one batch for an aggregator by uuid, with a transaction id the caller chooses.

Fleet workers act for aggregators created elsewhere (by the dispatcher) and must re-send a
retried decision under the same transaction id, which the exchange then answers again instead
of applying twice. This is the thin, reusable layer under ``RedisAggregator``'s batches.
"""

from __future__ import annotations

import threading
from typing import Any

from gsy_e_sdk.constants import BATCH_COMMAND_TIMEOUT
from gsy_e_sdk.pending import new_transaction_id
from gsy_e_sdk.redis_connection import RedisConnection
from gsy_e_sdk.wire import channels


class BatchTimeout(TimeoutError):
    """The exchange did not answer a batch in time."""


_subscribed: set[tuple[int, str]] = set()
_lock = threading.Lock()


def _listen_for_responses(connection: RedisConnection, aggregator_uuid: str) -> None:
    key = (id(connection), aggregator_uuid)
    with _lock:
        if key in _subscribed:
            return
        _subscribed.add(key)

    def resolve(_channel: str, payload: dict[str, Any]) -> None:
        connection.pending.resolve(payload.get("transaction_id"), payload)

    connection.subscribe({channels.batch_response(aggregator_uuid): resolve})


def submit_batch(connection: RedisConnection, aggregator_uuid: str, batch: dict[str, list[dict]],
                 transaction_id: str | None = None, timeout: float = BATCH_COMMAND_TIMEOUT,
                 wait: bool = True) -> dict[str, Any] | None:
    """Publish ``batch`` ({area uuid: [command, ...]}); the exchange's response envelope if ``wait``.

    Do not wait for an empty batch: the reference exchange never answers one (our local exchange
    does, and counts it as the aggregator having acted on the event).
    """
    transaction_id = transaction_id or new_transaction_id()
    envelope = {"type": "BATCHED", "transaction_id": transaction_id, "aggregator_uuid": aggregator_uuid,
                "batch_commands": batch}
    if not wait:
        connection.publish(channels.batch_commands(), envelope)
        return None
    _listen_for_responses(connection, aggregator_uuid)
    future = connection.pending.expect(transaction_id)
    connection.publish(channels.batch_commands(), envelope)
    return connection.pending.wait(transaction_id, future, timeout, BatchTimeout,
                                   "Sending batch commands timed out.", "batch_commands")
