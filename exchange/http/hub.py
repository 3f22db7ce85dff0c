"""Open websockets by key, fed from any thread: the Redis reader hands frames to the event loop.

Each socket has a bounded queue drained by its own sender, so one slow client cannot hold up
the others; a client that falls this far behind is disconnected (it reconnects and resyncs).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000


class Subscriber:
    def __init__(self, key: str) -> None:
        self.key = key
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)


class WebsocketHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)

    def attach(self, key: str) -> Subscriber:
        """Called on the event loop when a socket opens."""
        self._loop = asyncio.get_running_loop()
        subscriber = Subscriber(key)
        self._subscribers[key].add(subscriber)
        return subscriber

    def detach(self, subscriber: Subscriber) -> None:
        group = self._subscribers.get(subscriber.key)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self._subscribers[subscriber.key]

    def connected(self, key: str) -> int:
        return len(self._subscribers.get(key, ()))

    def deliver(self, key: str, frame: bytes) -> None:
        """Thread-safe: queue ``frame`` for every socket open under ``key``."""
        loop = self._loop
        if loop is not None and key in self._subscribers:
            loop.call_soon_threadsafe(self._put, key, frame)

    async def deliver_now(self, key: str, frame: bytes) -> None:
        """From the event loop itself."""
        self._put(key, frame)

    def _put(self, key: str, frame: bytes) -> None:
        for subscriber in list(self._subscribers.get(key, ())):
            try:
                subscriber.queue.put_nowait(frame)
            except asyncio.QueueFull:
                logger.warning("websocket %s is %d frames behind; disconnecting it", key, QUEUE_LIMIT)
                self.detach(subscriber)
                subscriber.queue = asyncio.Queue(1)
                subscriber.queue.put_nowait(None)  # tells its sender to close
