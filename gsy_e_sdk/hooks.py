"""Runs user hooks off the reader thread, on one small executor shared by the whole process.

Each client gets a ``HookRunner`` that runs its hooks one after the other in arrival order (so
``on_finish`` never overtakes the last ``on_trade``), while different clients run in parallel. A
hook that raises is logged with its traceback; nothing else is affected.

Going beyond the original SDK, a client whose hooks are slower than the exchange does not fall
ever further behind: every ``tick`` event still waiting in the queue when a newer event for the
same client arrives while one of its hooks runs is dropped (its ``on_tick`` and
``on_event_or_response`` do not run), since the newer event carries fresher state. A tick that
merely waits for a free thread while no hook of its client runs is not behind, and is kept; should
a burst of ticks queue up that way, the first event that arrives once a hook runs drops all of them.
``market``, ``trade`` and ``finish`` events and command responses are never dropped and keep
their order, so ``on_finish`` starts as soon as the hook running when ``finish`` arrived (and the
few market/trade hooks queued before it) returned. Drops are counted (``dropped_ticks``) and
logged once per client at INFO; ``drop_stale_ticks = False`` on the client class (or the
aggregators' ``drop_stale_ticks=False`` argument) keeps every tick.

What bounds the queue: while the hooks are behind at most one tick waits (each newer event
replaces it), the exchange sends one ``market`` event per slot, at most one ``trade`` event per
tick and one ``finish``, and command responses only answer commands the client sent.
``HOOK_QUEUE_LIMIT`` is the hard stop behind that: beyond it new work is refused with an error
log (and counted in ``overflowed``) rather than letting a hopelessly late client eat the
process's memory.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gsy_e_sdk.constants import MAX_WORKER_THREADS
from gsy_e_sdk.wire.per_process import PerProcess

logger = logging.getLogger(__name__)

HOOK_QUEUE_LIMIT = 10_000  # events and responses waiting for one client's hooks
DROPPABLE_EVENT = "tick"
EXCHANGE_EVENTS = frozenset({"market", "tick", "trade", "finish"})

Call = tuple[str, Callable[..., Any], tuple[Any, ...]]

# One pool per process: a forked child (Celery prefork) gets a pool of its own, not the parent's
# pool whose threads did not survive the fork.
_executor: PerProcess[ThreadPoolExecutor] = PerProcess(
    lambda: ThreadPoolExecutor(max_workers=MAX_WORKER_THREADS, thread_name_prefix="gsy-e-sdk-hook")
)


def shared_executor() -> ThreadPoolExecutor:
    return _executor.get()


class _Job:
    """The hooks of one event or response, run together in order."""

    __slots__ = ("calls", "event")

    def __init__(self, calls: tuple[Call, ...], event: str | None) -> None:
        self.calls = calls
        self.event = event


class HookRunner:
    def __init__(
        self,
        executor: ThreadPoolExecutor | None = None,
        *,
        name: str = "client",
        drop_stale_ticks: bool = True,
        limit: int = HOOK_QUEUE_LIMIT,
    ) -> None:
        self.executor = executor or shared_executor()
        self.name = name
        self.drop_stale_ticks = drop_stale_ticks
        self.limit = limit
        self.dropped_ticks = 0  # tick events superseded before their hooks started
        self.overflowed = 0  # events and responses refused because the queue was full
        self._queue: deque[_Job] = deque()
        self._waiting_ticks: deque[_Job] = deque()  # queued ticks not started yet, in queue order
        self._lock = threading.Lock()
        self._scheduled = False
        self._running = False  # a job of this client is being run right now
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, name: str, hook: Callable[..., Any], *args: Any) -> None:
        """Run one hook (a response, a registration ...); never dropped."""
        self.submit_event(None, [(name, hook, args)])

    def submit_event(self, event: str | None, calls: Iterable[Call]) -> None:
        """Run the hooks of one event (None: of a response), in order; a ``tick`` may be superseded."""
        self._enqueue(_Job(tuple(calls), event))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every submitted hook has returned (used by scripts and tests to settle)."""
        return self._idle.wait(timeout)

    def _enqueue(self, job: _Job) -> None:
        first_drop = first_overflow = False
        with self._lock:
            if job.event is not None and self._waiting_ticks and self._running:
                first_drop = self.dropped_ticks == 0
                self.dropped_ticks += len(self._waiting_ticks)
                for stale in self._waiting_ticks:
                    stale.calls = ()  # emptied rather than removed from the queue: the event is released
                self._waiting_ticks.clear()
            if len(self._queue) >= self.limit:
                self.overflowed += 1
                first_overflow = self.overflowed == 1
            else:
                self._queue.append(job)
                if job.event == DROPPABLE_EVENT and self.drop_stale_ticks:
                    self._waiting_ticks.append(job)
                self._idle.clear()
            schedule = not self._scheduled and bool(self._queue)
            if schedule:
                self._scheduled = True
        if first_drop:
            logger.info(
                "%s: hooks are slower than the exchange; tick events superseded by a newer event "
                "before their hooks started are skipped (counted in dropped_ticks; set "
                "drop_stale_ticks = False to run every one).",
                self.name,
            )
        if first_overflow:
            logger.error(
                "%s: %d events and responses are already waiting for hooks; refusing more "
                "(counted in overflowed) until the hooks catch up.",
                self.name,
                self.limit,
            )
        if schedule:
            self.executor.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._scheduled = self._running = False
                    self._idle.set()
                    return
                job = self._queue.popleft()
                self._running = True
                if self._waiting_ticks and job is self._waiting_ticks[0]:
                    self._waiting_ticks.popleft()  # started: no longer droppable
            for name, hook, args in job.calls:
                try:
                    hook(*args)
                except Exception as exc:
                    logger.exception("%s raised exception: %s.", name, exc)


class HookedClient:
    """What every client with hooks shares: its runner, the opt-out flag, the counters."""

    # Skip tick events whose hooks have not started when a newer event arrives (see module doc).
    drop_stale_ticks: bool = True
    _hooks: HookRunner

    def _start_hooks(self, name: str) -> None:
        self._hooks = HookRunner(name=name, drop_stale_ticks=self.drop_stale_ticks)

    def on_event_or_response(self, message: dict[str, Any]) -> None:
        """Called with every message addressed to this client; override to observe them."""

    def _on_traffic(self, message: dict[str, Any]) -> None:
        """A message the client only observes: to ``on_event_or_response``. An exchange event
        among them supersedes a stale tick like any event (see the module doc)."""
        event = message.get("event")
        self._hooks.submit_event(
            event if isinstance(event, str) and event in EXCHANGE_EVENTS else None,
            [("on_event_or_response", self.on_event_or_response, (message,))],
        )

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The process's hook executor (one for every client, see ``shared_executor``)."""
        return self._hooks.executor

    def wait_for_hooks(self, timeout: float | None = None) -> bool:
        """Block until every hook submitted so far has returned."""
        return self._hooks.wait_idle(timeout)

    @property
    def dropped_ticks(self) -> int:
        """Tick events skipped because a newer event arrived before their hooks started."""
        return self._hooks.dropped_ticks


class EventHooks(HookedClient):
    """The event hooks a script overrides (SDK_API.md 3, 4), declared once for every client kind."""

    def on_market_slot(self, market_info: dict[str, Any]) -> None:
        self.on_market_cycle(market_info)

    def on_market_cycle(self, market_info: dict[str, Any]) -> None:
        """Deprecated name of ``on_market_slot``, still called by its default."""

    def on_tick(self, tick_info: dict[str, Any]) -> None:
        pass

    def on_trade(self, trade_info: dict[str, Any]) -> None:
        pass

    def on_finish(self, finish_info: dict[str, Any]) -> None:
        pass
