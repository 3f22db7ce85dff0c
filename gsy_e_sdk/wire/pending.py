"""Responses the SDK is waiting for, keyed by transaction id.

The reader thread resolves a ``Future`` when the matching response arrives; the caller blocks on
``future.result(timeout)`` instead of polling, and a timeout raises the caller's exception with
the command name and transaction id appended to the original SDK's text.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any


class PendingResponses:
    def __init__(self) -> None:
        self._futures: dict[str, Future] = {}
        self._owners: dict[str, object] = {}
        self._lock = threading.Lock()

    def expect(self, transaction_id: str, owner: object = None) -> Future:
        """Register interest before publishing, so a fast answer cannot be missed."""
        future: Future = Future()
        with self._lock:
            self._futures[transaction_id] = future
            self._owners[transaction_id] = owner
        return future

    def owned_by(self, transaction_id: Any, owner: object) -> bool:
        if not isinstance(transaction_id, str):
            return False
        with self._lock:
            return transaction_id in self._futures and self._owners[transaction_id] is owner

    def resolve(self, transaction_id: Any, payload: Any) -> bool:
        """Hand ``payload`` to the waiter; False when nobody waits for this id."""
        if not isinstance(transaction_id, str):
            return False
        with self._lock:
            future = self._futures.pop(transaction_id, None)
            self._owners.pop(transaction_id, None)
        if future is None:
            return False
        future.set_result(payload)
        return True

    def discard(self, transaction_id: str) -> None:
        with self._lock:
            self._futures.pop(transaction_id, None)
            self._owners.pop(transaction_id, None)

    def __len__(self) -> int:
        return len(self._futures)

    def wait(
        self, transaction_id: str, future: Future, timeout: float, error: type[Exception], message: str, command: str
    ) -> Any:
        """The response, or ``error("<message> (command: ..., transaction_id: ...)")``."""
        try:
            return future.result(timeout)
        except FutureTimeout:
            self.discard(transaction_id)
            raise error(
                f"{message} (command: {command}, transaction_id: {transaction_id}, no answer within {timeout:g} s)"
            ) from None


def new_transaction_id() -> str:
    """A random UUID4 string, as every request of the protocol carries (REDIS.md 1.4)."""
    return str(uuid.uuid4())
