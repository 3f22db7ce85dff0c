"""Publishing one batch for an aggregator and waiting for its response envelope.

The single place the SDK sends batches: ``RedisAggregator`` uses it for its buffer, and fleet
workers use it to act for aggregators created elsewhere, re-sending a retried decision under the
same transaction id (the exchange then answers again instead of applying it twice).
"""

from __future__ import annotations

import threading
from typing import Any

from gsy_e_sdk.constants import BATCH_COMMAND_TIMEOUT
from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.pending import new_transaction_id
from gsy_e_sdk.wire.redis_connection import RedisConnection


class BatchTimeout(TimeoutError):
    """The exchange did not answer a batch in time."""


_listening: set[tuple[int, str]] = set()
_lock = threading.Lock()


def listen_for_responses(connection: RedisConnection, aggregator_uuid: str) -> None:
    """Resolve waiting callers when the aggregator's batch responses arrive (idempotent)."""
    key = (id(connection), aggregator_uuid)

    def resolve(_channel: str, payload: dict[str, Any]) -> None:
        connection.pending.resolve(payload.get("transaction_id"), payload)

    with _lock:
        if key in _listening:
            return
        connection.subscribe({channels.batch_response(aggregator_uuid): resolve})
        _listening.add(key)  # only once subscribed: a failed attempt is tried again next time


def batch_envelope(aggregator_uuid: str, batch: dict[str, list[dict]], transaction_id: str) -> dict[str, Any]:
    """The message published on the batch commands channel (REDIS.md)."""
    return {
        "type": "BATCHED",
        "transaction_id": transaction_id,
        "aggregator_uuid": aggregator_uuid,
        "batch_commands": batch,
    }


def submit_batch(
    connection: RedisConnection,
    aggregator_uuid: str,
    batch: dict[str, list[dict]],
    transaction_id: str | None = None,
    timeout: float = BATCH_COMMAND_TIMEOUT,
    wait: bool = True,
    *,
    owner: object = None,
    listen: bool = True,
    error: type[Exception] = BatchTimeout,
) -> dict[str, Any] | None:
    """Publish ``batch`` ({area uuid: [command, ...]}); the response envelope if ``wait``.

    ``listen=False`` when the caller already resolves responses itself (``RedisAggregator``).
    Do not wait for an empty batch: the reference exchange never answers one (the local exchange
    does, and counts it as the aggregator having acted on the event).
    """
    transaction_id = transaction_id or new_transaction_id()
    envelope = batch_envelope(aggregator_uuid, batch, transaction_id)
    if not wait:
        connection.publish(channels.batch_commands(), envelope)
        return None
    if listen:
        listen_for_responses(connection, aggregator_uuid)
    future = connection.pending.expect(transaction_id, owner=owner)
    connection.publish(channels.batch_commands(), envelope)
    return connection.pending.wait(
        transaction_id, future, timeout, error, "Sending batch commands timed out.", "batch_commands"
    )
