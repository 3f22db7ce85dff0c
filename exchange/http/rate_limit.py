"""Per-user request rate limit: a token bucket answering how long to wait, pure and thread-safe."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_second: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_second
        self.burst = burst if burst is not None else max(per_second, 1.0)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, last refill)
        self._lock = threading.Lock()

    def retry_after(self, user: str) -> int:
        """0 when the request may pass (and is counted), else whole seconds to wait (>= 1)."""
        if self.rate <= 0:
            return 0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(user, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[user] = (tokens - 1, now)
                return 0
            self._buckets[user] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))
