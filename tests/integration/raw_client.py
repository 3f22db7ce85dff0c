"""A protocol client made of plain redis-py calls, so exchange tests depend on no SDK code."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable

import redis


class RawClient:
    """Records every message on every channel and lets tests wait for the ones they expect."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.history: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(**{"*": self._record})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.01, daemon=True)
        time.sleep(0.05)

    def _record(self, message: dict) -> None:
        try:
            data = json.loads(message["data"])
        except (TypeError, ValueError):
            data = message["data"]
        with self._lock:
            self.history.append((message["channel"], data))

    def close(self) -> None:
        self._thread.stop()
        self._thread.join(timeout=2)
        self._pubsub.close()
        self.redis.close()

    def publish(self, channel: str, payload: dict | str) -> None:
        self.redis.publish(channel, payload if isinstance(payload, str) else json.dumps(payload))

    def seen(self, predicate: Callable[[str, Any], bool]) -> list[tuple[str, Any]]:
        with self._lock:
            return [(channel, data) for channel, data in self.history if predicate(channel, data)]

    def wait_for(self, predicate: Callable[[str, Any], bool], timeout: float = 15.0,
                 after: int = 0) -> tuple[str, Any]:
        """First message at index >= ``after`` for which ``predicate(channel, data)`` holds."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            with self._lock:
                fresh = self.history[index:]
                index += len(fresh)
            for channel, data in fresh:
                if predicate(channel, data):
                    return channel, data
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching message within {timeout} s")
            time.sleep(0.01)

    def mark(self) -> int:
        with self._lock:
            return len(self.history)

    def request(self, channel: str, payload: dict, response_channel: str, timeout: float = 10.0) -> Any:
        """Publish with a fresh transaction id and wait for the reply carrying it."""
        transaction_id = payload.setdefault("transaction_id", str(uuid.uuid4()))
        after = self.mark()
        self.publish(channel, payload)
        return self.wait_for(lambda ch, data: ch == response_channel and isinstance(data, dict)
                             and data.get("transaction_id") == transaction_id, timeout, after)[1]
