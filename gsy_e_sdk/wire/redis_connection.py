"""The process-wide Redis connection shared by every Redis client of the SDK.

One ``redis.Redis`` connection pool, one ``PubSub`` connection and ONE reader thread per Redis
URL, however many asset, market and aggregator clients the process creates. Clients register
handlers in a dict keyed by channel or pattern, so adding a client costs O(1) and a message is
dispatched by one dict lookup (the original chained one more callback per client).

The reader blocks on the socket (``get_message`` with a timeout), so an idle process uses no
CPU. Lost connections are retried by redis-py itself (the Redis policy of ``wire/retry.py`` on
the pool); when the pub/sub connection comes back redis-py resubscribes every channel and
pattern, and we log the length of the gap. Handlers run on the reader thread and must be quick:
clients hand user hooks to ``gsy_e_sdk.hooks``.

No message stops or stalls the reader: payloads arrive as raw bytes and are decoded here, so
bytes that are not UTF-8, invalid or deeply nested JSON, values that are not objects and
handlers that raise are all logged (rate-limited), counted in ``dropped_messages`` /
``handler_failures`` and dropped, and the reader reads on without reconnecting.

Commands to the exchange (``request``) are not lost to a start-up race: Redis drops a message
nobody subscribes to, so when a publish reaches no one (the exchange has not subscribed yet) it
is sent again, with the same transaction id, until a listener takes it or a bounded wait ends.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from gsy_e_sdk.wire import channels, json_codec
from gsy_e_sdk.wire.incoming import AreaResponse, check
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.pending import PendingResponses
from gsy_e_sdk.wire.per_process import PerProcessMap
from gsy_e_sdk.wire.redact import redact_url
from gsy_e_sdk.wire.redis_url import resolve_redis_url
from gsy_e_sdk.wire.retry import redis_retry

LISTENER_WAIT_TIMEOUT = 30  # s to re-send a command published before anybody listens

logger = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]

READ_TIMEOUT_S = 1.0
SUBSCRIBE_TIMEOUT_S = 10.0
READER_THREAD_NAME = "gsy-e-sdk-redis-reader"
# A command nobody received is sent again after these pauses (growing), until a listener takes it.
LISTENER_POLL_S = (0.05, 0.1, 0.2, 0.5)
SHOWN_BYTES = 120  # of a dropped payload, in the log


def _client(redis_url: str, decode_responses: bool) -> redis.Redis:
    return redis.Redis.from_url(
        redis_url,
        decode_responses=decode_responses,
        socket_keepalive=True,
        socket_connect_timeout=5,
        socket_timeout=30,
        retry=redis_retry(),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def _text(name: bytes | str) -> str:
    """A channel or pattern name; anyone may publish on a name that is not UTF-8."""
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


class RedisConnection:
    def __init__(self, redis_url: str) -> None:
        self.url = redis_url
        self.redis = _client(redis_url, decode_responses=True)
        # The subscriber reads bytes and decodes them in _dispatch: decoded by redis-py's parser,
        # one payload that was not UTF-8 raised there and cost a reconnect (~1 s deaf each).
        self._subscriber = _client(redis_url, decode_responses=False)
        self.pubsub = self._subscriber.pubsub()
        self.pending = PendingResponses()
        self.reconnections = 0
        self.dropped_messages = 0  # not JSON objects: logged (rate-limited) and skipped
        self.handler_failures = 0  # messages a handler raised on
        self._faults = RateLimitedLog(logger)
        self.listener_timeout = LISTENER_WAIT_TIMEOUT  # for commands published before the exchange listens
        self._channel_handlers: dict[str, tuple[Handler, ...]] = {}
        self._pattern_handlers: dict[str, tuple[Handler, ...]] = {}
        self._confirmations: dict[tuple[str, str], threading.Event] = {}
        self._aggregator_watchers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._last_alive = time.monotonic()
        self._watching_reconnects = False
        self._aggregator_response_subscribed = False
        self._aggregator_response_lock = threading.Lock()

    # Publishing -------------------------------------------------------------------------------

    def publish(self, channel: str, payload: Mapping[str, Any]) -> int:
        """Publish now; the number of subscribers that received it (Redis keeps nothing)."""
        return self.redis.publish(channel, json_codec.dumpb(payload))

    def publish_to_listener(self, channel: str, payload: Mapping[str, Any]) -> bool:
        """Publish; while nobody receives it, send it again until a listener does (or give up
        after ``listener_timeout`` s).

        Only safe for commands the exchange applies once per transaction id (CREATE, register,
        SELECT ...): a copy is sent again only when the last one reached no subscriber at all.
        """
        data = json_codec.dumpb(payload)
        if self.redis.publish(channel, data):
            return True
        logger.info(
            "Nobody listens on %s yet (is the exchange starting?); sending again as soon as "
            "someone does, for up to %g s.",
            channel,
            self.listener_timeout,
        )
        started = time.monotonic()
        pauses = itertools.chain(LISTENER_POLL_S, itertools.repeat(LISTENER_POLL_S[-1]))
        while (left := started + self.listener_timeout - time.monotonic()) > 0:
            time.sleep(min(next(pauses), left))
            if self.redis.publish(channel, data):
                logger.info("%s has a listener after %.1f s; command delivered.", channel, time.monotonic() - started)
                return True
        return False

    def request(
        self,
        channel: str,
        payload: Mapping[str, Any],
        *,
        owner: object,
        wait: bool,
        timeout: float,
        error: type[Exception],
        message: str,
        command: str,
    ) -> Any:
        """Send a command answered by transaction id; its answer when ``wait``, else None.

        The answer is expected before the command goes out, so a fast one is not missed; a
        command no listener took within the bounded wait raises ``error`` at once.
        """
        transaction_id = payload["transaction_id"]
        future = self.pending.expect(transaction_id, owner=owner)
        if not self.publish_to_listener(channel, payload):
            self.pending.discard(transaction_id)
            raise error(
                f"{message} (command: {command}, transaction_id: {transaction_id}, nobody "
                f"listened on {channel} for {self.listener_timeout:g} s: is the exchange "
                f"running, with this area?)"
            )
        if not wait:
            return None
        return self.pending.wait(transaction_id, future, timeout, error, message, command)

    def publish_many(self, messages: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Publish several messages in one round trip (a pipeline), in order."""
        pipe = self.redis.pipeline(transaction=False)
        for channel, payload in messages:
            pipe.publish(channel, json_codec.dumpb(payload))
        pipe.execute()

    # Subscriptions ----------------------------------------------------------------------------

    def subscribe(
        self,
        channel_handlers: Mapping[str, Handler] | None = None,
        pattern_handlers: Mapping[str, Handler] | None = None,
        timeout: float = SUBSCRIBE_TIMEOUT_S,
    ) -> None:
        """Add handlers; returns once Redis has confirmed every new subscription."""
        waits: list[tuple[tuple[str, str], threading.Event]] = []
        with self._lock:
            new_channels = self._add(self._channel_handlers, channel_handlers or {})
            new_patterns = self._add(self._pattern_handlers, pattern_handlers or {})
            for kind, names in (("subscribe", new_channels), ("psubscribe", new_patterns)):
                for name in names:
                    event = threading.Event()
                    self._confirmations[(kind, name)] = event
                    waits.append(((kind, name), event))
            try:
                if new_channels:
                    self.pubsub.subscribe(*new_channels)
                if new_patterns:
                    self.pubsub.psubscribe(*new_patterns)
            except Exception:
                # Redis stayed unreachable through redis-py's retries. Forget these handlers, or
                # a later subscribe() of the same channel would find it "already subscribed" and
                # never send SUBSCRIBE: the channel would stay deaf after Redis came back.
                for registry, names in ((self._channel_handlers, new_channels), (self._pattern_handlers, new_patterns)):
                    for name in names:
                        registry.pop(name, None)
                for key, _ in waits:
                    self._confirmations.pop(key, None)
                raise
            self._start_reader()
        if threading.current_thread() is self._reader:
            return  # the reader confirms its own subscriptions later; waiting would deadlock
        deadline = time.monotonic() + timeout
        for key, event in waits:
            if not event.wait(max(0.0, deadline - time.monotonic())):
                self._confirmations.pop(key, None)
                raise TimeoutError(
                    f"Redis at {redact_url(self.url)} did not confirm {key[0]} {key[1]!r} within {timeout:g} s"
                )

    def unsubscribe(
        self,
        channel_handlers: Mapping[str, Handler] | None = None,
        pattern_handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        """Remove handlers; channels nobody listens to any more are dropped at Redis too."""
        with self._lock:
            empty_channels = self._remove(self._channel_handlers, channel_handlers or {})
            empty_patterns = self._remove(self._pattern_handlers, pattern_handlers or {})
            if empty_channels:
                self.pubsub.unsubscribe(*empty_channels)
            if empty_patterns:
                self.pubsub.punsubscribe(*empty_patterns)

    @staticmethod
    def _add(registry: dict[str, tuple[Handler, ...]], handlers: Mapping[str, Handler]) -> list[str]:
        new = []
        for name, handler in handlers.items():
            existing = registry.get(name, ())
            if not existing:
                new.append(name)
            # Copy-on-write: the reader iterates a tuple that never changes under it.
            registry[name] = (*existing, handler)
        return new

    @staticmethod
    def _remove(registry: dict[str, tuple[Handler, ...]], handlers: Mapping[str, Handler]) -> list[str]:
        empty = []
        for name, handler in handlers.items():
            remaining = tuple(h for h in registry.get(name, ()) if h != handler)
            if remaining:
                registry[name] = remaining
            elif registry.pop(name, None) is not None:
                empty.append(name)
        return empty

    # The broadcast aggregator-response channel ------------------------------------------------

    def watch_aggregator_responses(
        self, aggregator_uuid: str | None = None, watcher: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        """Make sure ``aggregator-response`` is read; optionally route one aggregator's messages.

        Responses resolve pending requests by transaction id; SELECTED/UNSELECTED messages are
        also handed to the watcher of the aggregator they name, and only to it.
        """
        if aggregator_uuid is not None and watcher is not None:
            self._aggregator_watchers[aggregator_uuid] = watcher
        # Held until Redis confirmed, so no caller returns before the channel is read.
        with self._aggregator_response_lock:
            if not self._aggregator_response_subscribed:
                self.subscribe({channels.AGGREGATOR_RESPONSE: self._on_aggregator_response})
                self._aggregator_response_subscribed = True

    def forget_aggregator(self, aggregator_uuid: str) -> None:
        self._aggregator_watchers.pop(aggregator_uuid, None)

    def _on_aggregator_response(self, _channel: str, payload: dict[str, Any]) -> None:
        if not check(AreaResponse, payload, self._faults, channels.AGGREGATOR_RESPONSE):
            return
        watcher = self._aggregator_watchers.get(payload.get("aggregator_uuid"))  # type: ignore[arg-type]
        if watcher is not None:
            watcher(payload)
        # After the watcher: a caller returning from select_aggregator() finds the device listed.
        self.pending.resolve(payload.get("transaction_id"), payload)

    # The reader -------------------------------------------------------------------------------

    @property
    def reader_alive(self) -> bool:
        """True while the reader thread runs (it only ends on ``close()``; health checks ask)."""
        return self._reader is not None and self._reader.is_alive()

    def _start_reader(self) -> None:
        if not self._watching_reconnects and self.pubsub.connection is not None:
            # Registered after the first connect, so it only fires on reconnections.
            self.pubsub.connection.register_connect_callback(self._on_reconnect)
            self._watching_reconnects = True
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_forever, name=READER_THREAD_NAME, daemon=True)
            self._reader.start()

    def _read_forever(self) -> None:
        try:
            while not self._stop.is_set():
                self._read_one()
        finally:
            if not self._stop.is_set():
                logger.critical(
                    "The Redis reader for %s stopped: this process receives nothing more.", redact_url(self.url)
                )

    def _read_one(self) -> None:
        try:
            message = self.pubsub.get_message(timeout=READ_TIMEOUT_S)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if not self._stop.is_set():
                # redis-py already retried with backoff; start another round.
                logger.warning(
                    "Redis at %s unreachable for %.0f s (%s); still retrying.",
                    redact_url(self.url),
                    time.monotonic() - self._last_alive,
                    exc,
                )
            return
        except Exception:  # noqa: BLE001 - the reader must survive anything
            if not self._stop.is_set():
                self._faults.error(
                    "Unexpected error while reading from Redis at %s", redact_url(self.url), exc_info=True
                )
                self._stop.wait(0.1)  # not a busy loop should the error repeat
            return
        self._last_alive = time.monotonic()
        if message is None:
            return
        try:
            self._dispatch(message)
        except Exception:  # noqa: BLE001 - _dispatch contains its own faults; this is the backstop
            self._faults.error("Dispatching a message from Redis failed", exc_info=True)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], _text(message["channel"])
        if kind in ("subscribe", "psubscribe"):
            event = self._confirmations.pop((kind, channel), None)
            if event is not None:
                event.set()
            return
        if kind == "message":
            handlers = self._channel_handlers.get(channel, ())
        elif kind == "pmessage":
            handlers = self._pattern_handlers.get(_text(message["pattern"]), ())
        else:
            return
        if not handlers:
            return
        data = message["data"]
        try:
            payload = json_codec.loads(data)
        except ValueError:
            self._drop("that is not JSON (or not UTF-8, or nested too deeply)", channel, data)
            return
        if not isinstance(payload, dict):
            self._drop("that is not a JSON object", channel, data)
            return
        for handler in handlers:
            try:
                handler(channel, payload)
            except Exception:  # noqa: BLE001 - one bad message must not stop the others
                self.handler_failures += 1
                # No payload in the record: it may be huge, or too deep for repr().
                self._faults.error("Handling a message on %.200s failed", channel, exc_info=True)

    def _drop(self, why: str, channel: str, data: bytes) -> None:
        self.dropped_messages += 1
        self._faults.warning(
            "Dropped a message on %.200s %s: %r (%d bytes)", channel, why, data[:SHOWN_BYTES], len(data)
        )

    def _on_reconnect(self, _connection: Any) -> None:
        self.reconnections += 1
        logger.warning(
            "Reconnected to Redis at %s after a gap of about %.1f s; resubscribed %d "
            "channels and %d patterns (messages published during the gap are lost).",
            redact_url(self.url),
            time.monotonic() - self._last_alive,
            len(self.pubsub.channels),
            len(self.pubsub.patterns),
        )

    def close(self) -> None:
        """Stop the reader and drop the connections (the shared instance normally lives forever)."""
        self._stop.set()
        self.pubsub.close()  # shuts the socket down, which wakes the reader at once
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(READ_TIMEOUT_S * 2)
        self._subscriber.close()
        self.redis.close()


# A forked child has no reader thread: it gets fresh connections on first use.
_connections: PerProcessMap[str, RedisConnection] = PerProcessMap(RedisConnection)


def get_connection(redis_url: str | None = None) -> RedisConnection:
    """The process's shared connection to ``redis_url`` (else env ``REDIS_URL``, else
    ``LOCAL_REDIS_URL``), created on first use."""
    return _connections.get(resolve_redis_url(redis_url))
