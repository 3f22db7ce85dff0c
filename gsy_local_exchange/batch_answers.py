"""Batch de-duplication: which batches were seen, and their answers, per (aggregator, transaction id).

A batch re-sent with the same transaction id is never applied twice; its answer is published
again. Ids are scoped by aggregator, so one client reusing another's id neither gets the other's
answer nor blocks the other's batch. Everything here is bounded: ids by count, kept answers by
bytes (oldest evicted first), and how often one answer is re-published, so a tiny re-sent
request cannot make the exchange publish megabytes again and again.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

MB = 1024 * 1024
BatchKey = tuple[str, str]  # (aggregator uuid, transaction id)


@dataclass(frozen=True)
class BatchLimits:
    """Bounds of what one batch may cost the exchange (README: the local exchange's options)."""

    max_commands: int = 10_000  # per batch; above it the whole batch is refused
    max_queued_commands: int = 100_000  # of all batches waiting for the next tick; beyond, "busy"
    max_answer_bytes: int = 16 * MB  # per answer; Redis drops a subscriber whose output passes 32 MB
    cache_bytes: int = 64 * MB  # answers kept for re-sent batches
    cache_entries: int = 200_000  # batch ids remembered
    max_republish: int = 3  # times one answer is published again


def error_envelope(aggregator_uuid: str, transaction_id: str, message: str) -> str:
    """A batch answered as a whole with an error; nothing of it was applied unless ``message`` says so."""
    return json.dumps(
        {
            "command": "batch_commands",
            "transaction_id": transaction_id,
            "aggregator_uuid": aggregator_uuid,
            "status": "error",
            "message": message,
            "responses": {},
        }
    )


class BatchAnswers:
    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self._ids: OrderedDict[BatchKey, bool] = OrderedDict()  # key -> answered
        self._answers: OrderedDict[BatchKey, list] = OrderedDict()  # key -> [envelope, times republished]
        self.bytes = 0

    def __contains__(self, key: BatchKey) -> bool:
        return key in self._ids

    def add(self, key: BatchKey) -> None:
        """Remember a new batch, not answered yet."""
        self._ids[key] = False
        while len(self._ids) > self.limits.cache_entries:
            oldest, _ = self._ids.popitem(last=False)
            self._drop_answer(oldest)

    def store(self, key: BatchKey, envelope: str) -> None:
        """Keep a batch's answer for re-sends, evicting the oldest answers beyond the byte bound."""
        self._ids[key] = True
        if len(envelope) > self.limits.cache_bytes:
            return
        self._answers[key] = [envelope, 0]
        self.bytes += len(envelope)
        while self.bytes > self.limits.cache_bytes:
            self._drop_answer(next(iter(self._answers)))

    def replay(self, key: BatchKey) -> str | None:
        """What to publish for a re-sent batch ``key``: its answer, a short error, or None while it is pending."""
        if not self._ids.get(key):
            return None  # its answer comes with the tick that executes it
        kept = self._answers.get(key)
        if kept is not None and kept[1] < self.limits.max_republish:
            kept[1] += 1
            return kept[0]
        aggregator_uuid, transaction_id = key
        return error_envelope(
            aggregator_uuid,
            transaction_id,
            (
                f"Batch {transaction_id} was already handled; its answer is no longer available (answers are kept "
                f"up to {self.limits.cache_bytes / MB:g} MB and re-sent at most {self.limits.max_republish} times)"
            ),
        )

    def _drop_answer(self, key: BatchKey) -> None:
        kept = self._answers.pop(key, None)
        if kept is not None:
            self.bytes -= len(kept[0])
