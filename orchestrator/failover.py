"""Keep every shard queue consumed while worker hosts come and go, with Celery's own machinery.

A worker host that dies or drops off the network leaves its shard queues (its home, see
``orchestrator.worker_entry``) without a consumer: their tasks would wait in the broker until it
returns. The dispatcher therefore runs this watcher beside it:

* **detection**: Celery worker events (``-E``; heartbeats every ``HEARTBEAT_S`` s, see
  ``orchestrator.processes.worker_command``) are received on the broker; a worker silent for
  ``failover_after`` s (the fleet file; 0 turns the watcher off), or one that announced going
  offline, is lost. Silence is timed with this process's clock, so hosts' clocks may differ.
* **takeover**: the lost worker's home queues go to the live workers with the fewest queues
  (``orchestrator.failover_plan``) through ``add_consumer``; the tasks the lost worker held come
  back from the broker on their own (Redis: after the visibility timeout; RabbitMQ: when the
  connection is closed or its heartbeat missed), see ``orchestrator.celery_app``.
* **return**: when the worker is heard from again, the borrowers ``cancel_consumer`` its queues.

What each worker was started with and consumes now is asked of the worker (``fleet_queues``,
``workers.control``), so a restarted dispatcher picks up where the last one left. Each change is
logged and kept in the fleet's Redis (``StateStore.record_failover``) with its times, which is how
operators (and the tests) read detection and takeover times.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from celery import Celery

from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.retry import BROKER_EVENTS, reconnect_delays
from orchestrator.failover_plan import lost_nodes, plan_consumers
from orchestrator.sharding import queue_name
from orchestrator.state import StateStore

logger = logging.getLogger(__name__)
limited = RateLimitedLog(logger)

RECONCILE_EVERY_S = 0.25
RESYNC_EVERY_S = 15.0  # ask every live worker what it consumes, in case a change was missed
REPLY_TIMEOUT_S = 1.0


class ShardFailover:
    """Watches worker heartbeats and lends a lost worker's shard queues to the live ones."""

    def __init__(
        self,
        app: Celery,
        queues: Iterable[str],
        silence: float,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.queues = sorted(set(queues))
        self.silence = silence
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # node -> when we last heard from it (our clock)
        self._homes: dict[str, frozenset[str]] = {}
        self._consuming: dict[str, set[str]] = {}
        self._ask: set[str] = set()  # nodes whose queues must be asked (new, or back online)
        self._home_of: dict[str, str] = {}  # queue -> the last lost node it was home to
        self._stop = threading.Event()
        self._receiver: Any = None
        self._threads: list[threading.Thread] = []
        self._resynced = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ShardFailover:
        for target, name in ((self._receive, "fleet-failover-events"), (self._reconcile_loop, "fleet-failover")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("failover on: a worker silent for %g s hands its shard queues to the others", self.silence)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._receiver is not None:
            self._receiver.should_stop = True
        for thread in self._threads:
            thread.join(timeout=5)

    # ------------------------------------------------------------------ events
    def _receive(self) -> None:
        """Worker events from the broker, forever; a lost broker connection is retried with backoff."""
        delays = reconnect_delays(BROKER_EVENTS)
        while not self._stop.is_set():
            try:
                with self.app.connection_for_read() as connection:
                    self._receiver = self.app.events.Receiver(
                        connection,
                        handlers={
                            "worker-heartbeat": self._heard,
                            "worker-online": self._online,
                            "worker-offline": self._offline,
                        },
                        routing_key="worker.#",
                    )
                    if self._stop.is_set():
                        return
                    delays = reconnect_delays(BROKER_EVENTS)
                    self._receiver.capture(limit=None, timeout=None, wakeup=True)
            except Exception as exc:  # noqa: BLE001 - the broker went away (any transport's error): watch on
                limited.warning("worker events unavailable (%s); retrying", type(exc).__name__)
                self._stop.wait(next(delays))

    def _heard(self, event: dict[str, Any]) -> None:
        node = event.get("hostname")
        if not isinstance(node, str):
            return
        with self._lock:
            if node not in self._seen:
                self._ask.add(node)
            self._seen[node] = self.clock()

    def _online(self, event: dict[str, Any]) -> None:
        node = event.get("hostname")
        if isinstance(node, str):
            with self._lock:
                self._seen[node] = self.clock()
                self._ask.add(node)  # a restarted worker consumes its home only

    def _offline(self, event: dict[str, Any]) -> None:
        node = event.get("hostname")
        if isinstance(node, str):
            with self._lock:
                lost = [self._lose(node, "went offline")] if node in self._seen else []
            self._record_all(lost)

    # ------------------------------------------------------------------ decisions
    def _lose(self, node: str, why: str) -> dict[str, Any]:
        """Forget a node (lock held): its queues are no longer consumed by anybody. Returns the record."""
        self._seen.pop(node, None)
        home = self._homes.pop(node, frozenset())
        self._consuming.pop(node, None)
        self._ask.discard(node)
        self._home_of.update(dict.fromkeys(home, node))
        logger.warning("worker %s lost (%s); its queues: %s", node, why, ",".join(sorted(home)) or "unknown")
        return {"event": "lost", "node": node, "why": why, "queues": sorted(home)}

    def _reconcile_loop(self) -> None:
        while not self._stop.wait(RECONCILE_EVERY_S):
            try:
                self.reconcile()
            except Exception as exc:  # noqa: BLE001 - a round that fails is retried; the watch never stops
                limited.warning("failover round failed (%s: %s); next round in %g s", type(exc).__name__, exc, 1)

    def reconcile(self) -> None:
        """One round: lose silent workers, learn new ones, then lend and return queues."""
        now = self.clock()
        with self._lock:
            lost = [
                self._lose(node, f"silent for {now - self._seen[node]:.1f} s")
                for node in sorted(lost_nodes(self._seen, now, self.silence))
            ]
            if now - self._resynced >= RESYNC_EVERY_S:
                self._ask |= set(self._seen)
                self._resynced = now
            ask = sorted(self._ask)
        self._record_all(lost)
        for node in ask:
            self._learn(node)
        with self._lock:
            homes = {node: home for node, home in self._homes.items() if node in self._seen}
            consuming = {node: set(self._consuming.get(node, ())) for node in homes}
        plan = plan_consumers(self.queues, homes, consuming)
        for node, queue in plan.add:
            if self._control("add_consumer", node, queue):
                self._record({"event": "lent", "node": node, "queue": queue, "home": self._home_of.get(queue)})
        for node, queue in plan.cancel:
            if self._control("cancel_consumer", node, queue):
                self._record({"event": "returned", "node": node, "queue": queue})

    def _learn(self, node: str) -> None:
        replies = self.app.control.broadcast(
            "fleet_queues", destination=[node], reply=True, timeout=REPLY_TIMEOUT_S, limit=1
        )
        answer = next((reply[node] for reply in replies or [] if node in reply), None)
        if not isinstance(answer, dict) or not answer.get("home"):
            return  # not ready yet (or not a fleet worker): asked again next round
        home = frozenset(answer["home"]) & set(self.queues)
        with self._lock:
            self._ask.discard(node)
            if node not in self._seen or not home:
                return
            known = node in self._homes
            self._homes[node] = home
            self._consuming[node] = set(answer.get("consuming") or ())
        if not known:
            logger.info("worker %s consumes %s", node, ",".join(sorted(home)))
            self._record({"event": "joined", "node": node, "queues": sorted(home)})

    def _control(self, command: str, node: str, queue: str) -> bool:
        method = getattr(self.app.control, command)
        replies = method(queue, destination=[node], reply=True, timeout=REPLY_TIMEOUT_S)
        if not any(node in reply and "ok" in reply[node] for reply in replies or []):
            limited.warning("%s %s on %s got no answer; trying again", command, queue, node)
            return False
        with self._lock:
            consuming = self._consuming.setdefault(node, set())
            if command == "add_consumer":
                consuming.add(queue)
            else:
                consuming.discard(queue)
        logger.warning("%s: %s %s", node, "now consumes" if command == "add_consumer" else "hands back", queue)
        return True

    def _record_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._record(event)

    def _record(self, event: dict[str, Any]) -> None:
        if self.store is not None:
            try:
                self.store.record_failover({**event, "at": time.time()})
            except redis.RedisError as exc:  # the record is for people; the failover itself goes on
                limited.warning("could not record a failover event (%s)", type(exc).__name__)


def start_failover(app: Celery, shards: int, silence: float, store: StateStore | None) -> ShardFailover | None:
    """The watcher over the fleet's shard queues, started; None when the fleet turned it off (0 s)."""
    if silence <= 0:
        return None
    return ShardFailover(app, [queue_name(shard) for shard in range(shards)], silence, store).start()
