"""Open websockets by key, fed from any thread: the Redis reader hands frames to the event loop.

Each socket has a queue bounded in frames and bytes, drained by its own sender, so one slow
client cannot hold up the others; a client that falls this far behind is disconnected (it
reconnects and resyncs).

Answers to requests (not events) for a key with no socket are held for a while: the original
SDK POSTs ``register/`` and opens its websocket about 8 ms later (REST.md, reference behaviour
1), and would wait forever for an answer pushed into the void. Every frame goes through the
event loop in arrival order, so held answers reach a new socket before anything newer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable

from gsy_e_sdk.wire.log_limit import RateLimitedLog

logger = logging.getLogger(__name__)
limited_log = RateLimitedLog(logger)

QUEUE_LIMIT = 10_000
QUEUE_BYTES_LIMIT = 64 * 1024 * 1024
HOLD_SECONDS = 30.0
HELD_PER_KEY = 100
HELD_FRAMES = 10_000
HELD_BYTES = 16 * 1024 * 1024


class Subscriber:
    def __init__(self, key: str) -> None:
        self.key = key
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        self.queued_bytes = 0

    def offer(self, frame: bytes) -> bool:
        """Queue ``frame``; False when the socket is too far behind to take it."""
        if self.queue.full() or self.queued_bytes + len(frame) > QUEUE_BYTES_LIMIT:
            return False
        self.queue.put_nowait(frame)
        self.queued_bytes += len(frame)
        return True

    async def next(self) -> bytes | None:
        """The next frame to send; None tells the sender to close the socket."""
        frame = await self.queue.get()
        if frame is not None:
            self.queued_bytes -= len(frame)
        return frame

    def close_soon(self) -> None:
        self.queue = asyncio.Queue(1)
        self.queued_bytes = 0
        self.queue.put_nowait(None)


class HeldAnswers:
    """Frames waiting for their key's socket: at most ``per_key`` per key, ``max_frames`` and
    ``max_bytes`` in all, none older than ``max_age`` s; the oldest go first. Not thread-safe."""

    def __init__(
        self,
        max_age: float = HOLD_SECONDS,
        per_key: int = HELD_PER_KEY,
        max_frames: int = HELD_FRAMES,
        max_bytes: int = HELD_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age, self.per_key, self.max_frames, self.max_bytes = max_age, per_key, max_frames, max_bytes
        self._clock = clock
        self._sequence = itertools.count()
        self._frames: OrderedDict[int, tuple[str, float, bytes]] = OrderedDict()  # oldest first
        self._by_key: dict[str, deque[int]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, key: str, frame: bytes) -> None:
        now = self._clock()
        self._expire(now)
        if len(frame) > self.max_bytes:
            limited_log.warning(
                "dropped a %d-byte answer for %s: no socket open and too large to hold", len(frame), key
            )
            return
        waiting = self._by_key.setdefault(key, deque())
        if len(waiting) >= self.per_key:
            self._drop(waiting[0], f"more than {self.per_key} answers waiting for it")
        sequence = next(self._sequence)
        self._frames[sequence] = (key, now, frame)
        self._by_key.setdefault(key, waiting).append(sequence)
        self.bytes += len(frame)
        while len(self._frames) > self.max_frames or self.bytes > self.max_bytes:
            self._drop(next(iter(self._frames)), "too many answers waiting for sockets")

    def take(self, key: str) -> list[bytes]:
        """Every frame still held for ``key``, oldest first; they are no longer held."""
        self._expire(self._clock())
        frames = [self._frames.pop(sequence)[2] for sequence in self._by_key.pop(key, ())]
        self.bytes -= sum(len(frame) for frame in frames)
        return frames

    def _expire(self, now: float) -> None:
        while self._frames:
            sequence, (_key, held_at, _frame) = next(iter(self._frames.items()))
            if now - held_at <= self.max_age:
                return
            self._drop(sequence, f"no socket opened within {self.max_age:g} s")

    def _drop(self, sequence: int, reason: str) -> None:
        key, _, frame = self._frames.pop(sequence)
        waiting = self._by_key[key]
        waiting.popleft()  # both orders are arrival order, so it is this key's oldest
        if not waiting:
            del self._by_key[key]
        self.bytes -= len(frame)
        limited_log.warning("dropped an answer held for %s: %s", key, reason)


class WebsocketHub:
    def __init__(self, held: HeldAnswers | None = None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._held = held or HeldAnswers()
        self._lock = threading.Lock()  # the loop and the Redis reader both touch the tables

    def attach(self, key: str, prelude: Iterable[bytes] = ()) -> Subscriber:
        """Called on the event loop when a socket opens: ``prelude`` first, then held answers
        (those equal to a prelude frame are not sent twice), then whatever comes next."""
        subscriber = Subscriber(key)
        first = list(prelude)
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._subscribers[key].add(subscriber)
            held = self._held.take(key)
        sent = set(first)
        for frame in first + [frame for frame in held if frame not in sent]:
            subscriber.offer(frame)
        return subscriber

    def detach(self, subscriber: Subscriber) -> None:
        with self._lock:
            group = self._subscribers.get(subscriber.key)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._subscribers[subscriber.key]

    def deliver(self, key: str, frame: bytes, hold: bool = False) -> None:
        """Thread-safe: queue ``frame`` for every socket open under ``key``; with ``hold`` (an
        answer, not an event) keep it for a socket that opens later if none is open."""
        with self._lock:
            loop = self._loop
            if loop is None:  # no socket has ever opened: nothing can be in flight on the loop
                if hold:
                    self._held.add(key, frame)
                return
        try:
            loop.call_soon_threadsafe(self._put, key, frame, hold)
        except RuntimeError:  # the loop has closed: the server is stopping
            pass

    def _put(self, key: str, frame: bytes, hold: bool) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(key, ()))
            if not subscribers and hold:
                self._held.add(key, frame)
        for subscriber in subscribers:
            if not subscriber.offer(frame):
                limited_log.warning(
                    "websocket %s is too far behind (%d frames, %d bytes); disconnecting it",
                    key,
                    subscriber.queue.qsize(),
                    subscriber.queued_bytes,
                )
                self.detach(subscriber)
                subscriber.close_soon()
