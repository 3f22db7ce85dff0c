"""The exchange's answers to the dispatcher's own slice batches, counted (workers do not wait).

Each batch the dispatcher sends is expected by its transaction id; an answer is counted once
(accepted and rejected commands, latency from the event) and recorded a burst at a time. A
re-sent batch's repeated answer and operators' batches find no entry and are not counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from orchestrator.state import StateStore

logger = logging.getLogger(__name__)

IN_FLIGHT_KEPT = 100_000  # batches awaiting an answer; older ones are forgotten
FLUSH_EVERY_S = 0.2  # answers are recorded at most this often from the reader thread


class AnswerCounter:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._in_flight: OrderedDict[str, tuple[int, float]] = OrderedDict()  # batch id -> (shard, received)
        self._lock = threading.Lock()  # also guards the answers not recorded yet
        self._answers: list[tuple[int, float, int, int]] = []
        self._flushed = time.monotonic()

    def expect(self, slices: Iterable[dict[str, Any]]) -> None:
        """Slices about to be sent: their market/tick batches will be answered."""
        with self._lock:
            for item in slices:
                if item["event"] in ("market", "tick"):
                    self._in_flight[item["transaction_id"]] = (item["shard"], item["dispatched_at"])
            while len(self._in_flight) > IN_FLIGHT_KEPT:
                self._in_flight.popitem(last=False)

    def count(self, envelope: dict[str, Any]) -> None:
        """The exchange answered a batch (on the reader thread)."""
        transaction_id = envelope.get("transaction_id")
        if not isinstance(transaction_id, str):
            return
        with self._lock:
            sent = self._in_flight.pop(transaction_id, None)
        if sent is None:
            return
        shard, received = sent
        accepted = rejected = 0
        for entries in (envelope.get("responses") or {}).values():
            for entry in entries:
                if not isinstance(entry, dict):
                    continue
                if entry.get("status") == "ready":
                    accepted += 1
                else:
                    rejected += 1
                    logger.info("command rejected: %s", entry)
        with self._lock:
            self._answers.append((shard, time.time() - received, accepted, rejected))
            due = time.monotonic() - self._flushed >= FLUSH_EVERY_S
        if due:
            self.flush()

    def flush(self) -> None:
        """Record the answers counted since the last flush (a burst's in one round trip)."""
        with self._lock:
            answers, self._answers = self._answers, []
            self._flushed = time.monotonic()
        if not answers:
            return
        try:
            self.store.record_answers(answers)
        except Exception:  # noqa: BLE001 - Redis away: keep them for the next flush
            logger.warning("could not record %d batch answers; retrying at the next flush", len(answers))
            with self._lock:
                self._answers = answers + self._answers
