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
# Protocol messages nest at most 5 levels (batch > commands > uuid > command > forecast). Deeper
# ones are dropped: echoing such a value (an id, a name) into a response would exhaust the
# interpreter's recursion limit in json.dumps or repr, deep inside the tick.
MAX_PAYLOAD_DEPTH = 32


def decode_payload(data: bytes | str, channel: str = "") -> object | None:
    """The JSON value of a received payload, or None (with a warning) when it is not usable JSON.

    Never raises: bytes that are not UTF-8/16/32, invalid or truncated JSON, integers beyond
    Python's digit limit and values nested deeper than ``MAX_PAYLOAD_DEPTH`` are all dropped.
    """
    try:
        payload = json.loads(data)  # not orjson: it reads integers beyond 64 bits as floats
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        logger.warning("ignored a message on %s that is not JSON", channel)
        return None
    if _nested_deeper_than(payload, MAX_PAYLOAD_DEPTH):
        logger.warning("ignored a message on %s nested deeper than %d levels", channel, MAX_PAYLOAD_DEPTH)
        return None
    return payload


def _nested_deeper_than(value: object, limit: int) -> bool:
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


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
            self.inbox.put((channel, decode_payload(message["data"], channel)))

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
