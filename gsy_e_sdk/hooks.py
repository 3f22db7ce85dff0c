"""Runs user hooks off the reader thread, on one small executor shared by the whole process.

Each client gets a ``HookRunner`` that runs its hooks one after the other in arrival order (so
``on_finish`` never overtakes the last ``on_trade``), while different clients run in parallel. A
hook that raises is logged with its traceback; nothing else is affected.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gsy_e_sdk.constants import MAX_WORKER_THREADS

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def shared_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=MAX_WORKER_THREADS,
                                           thread_name_prefix="gsy-e-sdk-hook")
        return _executor


class HookRunner:
    def __init__(self, executor: ThreadPoolExecutor | None = None) -> None:
        self.executor = executor or shared_executor()
        self._queue: deque[tuple[str, Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, name: str, hook: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._queue.append((name, hook, args))
            self._idle.clear()
            if self._scheduled:
                return
            self._scheduled = True
        self.executor.submit(self._drain)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every submitted hook has returned (used by scripts and tests to settle)."""
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._scheduled = False
                    self._idle.set()
                    return
                name, hook, args = self._queue.popleft()
            try:
                hook(*args)
            except Exception as exc:  # noqa: BLE001 - a user hook must never kill the SDK
                logger.exception("%s raised exception: %s.", name, exc)
