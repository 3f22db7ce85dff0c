"""The exchange's Redis edge: one subscriber thread feeding a queue, pipelined publishing.

The engine never touches Redis; this adapter only moves bytes. Connection errors are retried
by redis-py's own ``Retry`` with exponential backoff, and a PubSub reconnect resubscribes
every channel, so the exchange survives a Redis restart.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterable

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

Incoming = tuple[str, object]  # (channel, decoded JSON or None when undecodable)


def connect(url: str) -> redis.Redis:
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=60)
    return redis.Redis.from_url(url, retry=retry, retry_on_error=[RedisConnectionError, RedisTimeoutError],
                                health_check_interval=10, socket_keepalive=True)


class RedisEdge:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = connect(url)
        self.inbox: queue.Queue[Incoming] = queue.Queue()
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def subscribe(self, channels: Iterable[str]) -> None:
        names = list(channels)
        for start in range(0, len(names), 1000):
            self._pubsub.subscribe(*names[start:start + 1000])
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="exchange-redis-reader", daemon=True)
            self._thread.start()

    def _read(self) -> None:
        while not self._stopping.is_set():
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self._stopping.is_set():
                    return
                logger.warning("Redis connection lost (%s); retrying", exc)
                self._stopping.wait(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            try:
                payload = json.loads(message["data"])
            except (ValueError, TypeError):
                logger.warning("ignored a message on %s that is not JSON", channel)
                payload = None
            self.inbox.put((channel, payload))

    def publish(self, messages: list[tuple[str, str]]) -> None:
        if not messages:
            return
        pipe = self.client.pipeline(transaction=False)
        for channel, payload in messages:
            pipe.publish(channel, payload)
        pipe.execute()

    def close(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=3)
        try:
            self._pubsub.close()
        finally:
            self.client.close()
