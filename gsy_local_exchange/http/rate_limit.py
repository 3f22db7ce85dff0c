"""Token buckets answering how long to wait: per-user requests, failed logins. Pure and thread-safe.

Keys may come from clients (peer addresses), so the table is bounded: past ``max_keys`` the
least recently used bucket is forgotten (a forgotten bucket is a full one, i.e. lenient).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        per_second: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = per_second
        self.burst = burst if burst is not None else max(per_second, 1.0)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """0 when the request may pass (and is counted), else whole seconds to wait (>= 1)."""
        return self._check(key, take=True)

    def blocked_for(self, key: str) -> int:
        """Like ``retry_after`` but counts nothing: used to refuse before doing the work."""
        return self._check(key, take=False)

    def _check(self, key: str, take: bool) -> int:
        if self.rate <= 0:
            return 0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                wait = 0
                if take:
                    tokens -= 1
            else:
                wait = max(1, math.ceil((1 - tokens) / self.rate))
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait
