"""Rate-limited logging for messages a client can trigger at will (malformed input).

A flood of garbage on a channel must not become a flood in the log: each kind of message is
logged at most ``burst`` times per ``period``; the rest are counted, and the count is appended
to the next record of that kind that gets through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RateLimitedLog:
    """``warning(message, *args)`` like a logger's, limited per ``message`` (the format string)."""

    def __init__(
        self, logger: logging.Logger, period: float = 10.0, burst: int = 5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.period = period
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()  # the Redis reader thread and the main loop both log
        self._windows: dict[str, tuple[float, int, int]] = {}  # message -> (window start, logged, suppressed)

    def warning(self, message: str, *args: object) -> None:
        self._log(logging.WARNING, message, args)

    def error(self, message: str, *args: object, exc_info: bool = False) -> None:
        self._log(logging.ERROR, message, args, exc_info)

    def _log(self, level: int, message: str, args: tuple, exc_info: bool = False) -> None:
        if not self.logger.isEnabledFor(level):
            return
        now = self._clock()
        with self._lock:
            start, logged, suppressed = self._windows.get(message, (now, 0, 0))
            if now - start >= self.period:
                start, logged = now, 0
            if logged >= self.burst:
                self._windows[message] = (start, logged, suppressed + 1)
                return
            self._windows[message] = (start, logged + 1, 0)
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self.logger.log(level, message, *args, exc_info=exc_info, stacklevel=3)  # the caller's line
