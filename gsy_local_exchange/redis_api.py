"""The exchange's Redis edge: one subscriber thread feeding a bounded queue, pipelined publishing.

The engine never touches Redis; this adapter only moves bytes. Connection errors are retried
by redis-py's own ``Retry`` (the exchange's policy in ``gsy_e_sdk/wire/retry.py``), and a PubSub reconnect resubscribes
every channel, so the exchange survives a Redis restart.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterable

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.retry import EXCHANGE_REDIS, redis_retry

logger = logging.getLogger(__name__)
# Clients choose what they publish: a flood of garbage is logged a few times per period, not per message.
limited_log = RateLimitedLog(logger)

Incoming = tuple[str, object]  # (channel, decoded JSON or None when undecodable)
# Protocol messages nest at most 5 levels (batch > commands > uuid > command > forecast). Deeper
# ones are dropped: echoing such a value (an id, a name) into a response would exhaust the
# interpreter's recursion limit in json.dumps or repr, deep inside the tick.
MAX_PAYLOAD_DEPTH = 32
# Larger payloads are dropped before decoding: decoded JSON takes up to ~20x its size in memory.
# A full batch (10,000 order commands by default) is about 1 MB.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# Received messages wait for the main loop (a long tick, a flood) as bytes, decoded one at a time
# when taken; beyond this many bytes waiting, new ones are dropped.
MAX_INBOX_BYTES = 64 * 1024 * 1024


def decode_payload(data: bytes | str, channel: str = "") -> object | None:
    """The JSON value of a received payload, or None (with a warning) when it is not usable JSON.

    Never raises: bytes that are not UTF-8/16/32, invalid or truncated JSON, integers beyond
    Python's digit limit and values nested deeper than ``MAX_PAYLOAD_DEPTH`` are all dropped.
    """
    try:
        payload = json.loads(data)  # not orjson: it reads integers beyond 64 bits as floats
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        limited_log.warning("ignored a message on %s that is not JSON", channel)
        return None
    if _nested_deeper_than(payload, MAX_PAYLOAD_DEPTH):
        limited_log.warning("ignored a message on %s nested deeper than %d levels", channel, MAX_PAYLOAD_DEPTH)
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
    return redis.Redis.from_url(
        url,
        retry=redis_retry(EXCHANGE_REDIS),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
        socket_keepalive=True,
    )


class RedisEdge:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = connect(url)
        self._inbox: queue.SimpleQueue[tuple[str, bytes | str | None]] = queue.SimpleQueue()  # None: dropped
        self._inbox_bytes = 0  # raw bytes of the queued messages, bounded by MAX_INBOX_BYTES
        self._inbox_lock = threading.Lock()
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def subscribe(self, channels: Iterable[str]) -> None:
        names = list(channels)
        for start in range(0, len(names), 1000):
            self._pubsub.subscribe(*names[start : start + 1000])
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="exchange-redis-reader", daemon=True)
            self._thread.start()

    def receive(self, timeout: float = 0) -> Incoming | None:
        """The next received message, decoded, waiting up to ``timeout`` seconds (0: not at all); None if none."""
        try:
            channel, data = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return None
        if data is None:
            return channel, None
        with self._inbox_lock:
            self._inbox_bytes -= len(data)
        return channel, decode_payload(data, channel)

    def _read(self) -> None:
        while not self._stopping.is_set():
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self._stopping.is_set():
                    return
                limited_log.warning("Redis connection lost (%s); retrying", exc)
                self._stopping.wait(0.5)
                continue
            except Exception:  # noqa: BLE001 - a reply redis-py cannot parse must not end the reader for good
                limited_log.error("reading from Redis failed; retrying", exc_info=True)
                self._stopping.wait(0.5)
                continue
            if message is not None and message.get("type") == "message":
                self._queue(message)

    def _queue(self, message: dict) -> None:
        try:
            channel, data = message["channel"], message["data"]
            channel = channel.decode(errors="replace") if isinstance(channel, bytes) else channel
            size = len(data)
            if size > MAX_PAYLOAD_BYTES:
                limited_log.warning("ignored a message on %s of more than %d bytes", channel, MAX_PAYLOAD_BYTES)
                self._inbox.put((channel, None))
                return
            with self._inbox_lock:
                full = self._inbox_bytes + size > MAX_INBOX_BYTES
                if not full:
                    self._inbox_bytes += size
            if full:
                limited_log.warning(
                    "dropped a message on %s: %d bytes already wait to be handled", channel, MAX_INBOX_BYTES
                )
                return
            self._inbox.put((channel, data))
        except Exception:  # noqa: BLE001 - whatever a message holds, the exchange keeps reading
            limited_log.error("dropped a message the reader could not handle", exc_info=True)

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
