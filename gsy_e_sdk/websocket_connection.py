"""All websockets of the process on ONE asyncio event loop in ONE daemon thread.

The original started a thread with its own loop per client; here every asset, market and
aggregator socket is a task on the shared loop, so a thousand sockets cost a thousand tasks, not
a thousand threads.

Each ``WebsocketConnection`` keeps its socket open forever: at every (re)connect it asks the
token provider for a current token (logging in again after a 401 handshake), and after any
failure it waits with jittered exponential backoff (the websocket policy of
``gsy_e_sdk/wire/retry.py``: 0.5 s doubling to 30 s; a connection that lived longer than 30 s
resets it). Frames may be binary or text, read as bytes and decoded here;
each must be a JSON object, which is handed to ``on_message`` on the loop thread - handlers must
be quick (clients resolve futures and queue hooks, nothing more). A frame that is not UTF-8, not
JSON, nested too deeply or not an object, and a handler that raises, are logged (rate-limited),
counted in ``dropped_messages`` and skipped: the socket stays open and reads on.
``on_disconnect`` is called when an open connection ends: answers in flight are lost then (the
server does not redeliver). Reconnects are logged without secrets: the websockets library gets a
logger whose filter blanks the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from gsy_e_sdk import constants
from gsy_e_sdk.redaction import RedactingFilter, redact
from gsy_e_sdk.wire import json_codec
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.per_process import PerProcess
from gsy_e_sdk.wire.retry import WEBSOCKET_HEALTHY_AFTER_SECS, reconnect_delays

if TYPE_CHECKING:
    from gsy_e_sdk.jwt_auth import TokenProvider

logger = logging.getLogger(__name__)
# Handed to the websockets library, whose DEBUG output includes the handshake headers.
wire_logger = logging.getLogger(f"{__name__}.wire")
wire_logger.addFilter(RedactingFilter())

LOOP_THREAD_NAME = "gsy-e-sdk-websockets"
# Largest frame read (the library's default is 1 MiB, which a large grid tree can exceed); a
# bigger one makes the library close the connection, which then reconnects.
MAX_FRAME_BYTES = 32 * 2**20
SHOWN_BYTES = 120  # of a dropped frame in the log

MessageHandler = Callable[[dict[str, Any]], None]


class WebsocketLoop:
    """The event loop thread that hosts every socket of the process (started on first use)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=LOOP_THREAD_NAME, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Any) -> Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    @property
    def alive(self) -> bool:
        """True while the loop thread runs its loop (health checks ask)."""
        return self.thread.is_alive() and self.loop.is_running()


# A forked child has no loop thread: it starts its own on first use.
_loop: PerProcess[WebsocketLoop] = PerProcess(WebsocketLoop)


def shared_loop() -> WebsocketLoop:
    return _loop.get()


class WebsocketConnection:
    """One socket that reconnects forever until ``close()``."""

    def __init__(
        self,
        url: str,
        auth: TokenProvider,
        on_message: MessageHandler,
        on_disconnect: Callable[[], None] | None = None,
        finished: Callable[[], bool] | None = None,
        healthy_after: float = WEBSOCKET_HEALTHY_AFTER_SECS,
        delays: Callable[[], Iterator[float]] = reconnect_delays,
    ) -> None:
        self.url = url
        self.connections = 0  # successful handshakes so far; > 1 means we reconnected
        self.dropped_messages = 0  # frames that were not JSON objects, or whose handler raised
        self._faults = RateLimitedLog(logger)
        self._auth = auth
        self._on_message = on_message
        self._on_disconnect = on_disconnect
        self._finished = finished  # True once the simulation sent `finish`: a close is then the end
        self._healthy_after = healthy_after
        self._delays = delays
        self._connected = threading.Event()
        self._closed = False
        self._loop = shared_loop()
        self._task: Future | None = None

    @property
    def thread(self) -> threading.Thread:
        return self._loop.thread

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def reader_alive(self) -> bool:
        """True while this socket's task runs (connected or reconnecting) on a live loop."""
        return self._task is not None and not self._task.done() and self._loop.alive

    def start(self) -> WebsocketConnection:
        if self._task is None:
            self._task = self._loop.submit(self._run())
        return self

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    def close(self) -> None:
        """Stop reconnecting and close the socket."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()  # thread-safe: propagates to the task on the loop

    async def _run(self) -> None:
        delays = self._delays()
        loop = asyncio.get_running_loop()
        renewed = False  # the last handshake was refused for its token, which we have renewed
        while not self._closed:
            opened_at = None
            retry_now = False
            token = None
            try:
                token = await loop.run_in_executor(None, self._auth.token)
                async with connect(
                    self.url,
                    additional_headers=_headers(token),
                    logger=wire_logger,
                    open_timeout=constants.HTTP_CONNECT_TIMEOUT_SECS * 2,
                    max_size=MAX_FRAME_BYTES,
                ) as socket:
                    opened_at = time.monotonic()
                    self.connections += 1
                    renewed = False
                    if self.connections > 1:
                        logger.warning("Websocket %s reconnected.", self.url)
                    else:
                        logger.debug("Websocket %s connected.", self.url)
                    self._connected.set()
                    while True:
                        # Bytes, text frames too: their UTF-8 is checked in _dispatch, where a bad
                        # frame is dropped instead of failing the connection.
                        self._dispatch(await socket.recv(decode=False))
            except ConnectionClosedOK:
                reason = "closed by the server"
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                status = exc.response.status_code
                reason = f"handshake refused with HTTP {status}"
                if status == 401:
                    fresh = await loop.run_in_executor(None, self._auth.token_refused, token)
                    # A new token deserves one immediate attempt; a second 401 backs off.
                    retry_now = bool(fresh) and fresh != token and not renewed
                    renewed = retry_now
            except Exception as exc:  # noqa: BLE001 - any failure means: wait, then reconnect
                reason = redact(f"{type(exc).__name__}: {exc}")
            finally:
                self._connected.clear()
            if opened_at is not None and self._on_disconnect is not None:
                try:
                    self._on_disconnect()
                except Exception:
                    logger.exception("Handling the loss of websocket %s failed", self.url)
            if self._closed:
                return
            if self._finished is not None and self._finished():
                # The exchange closes its sockets when the simulation ends: that is no fault.
                logger.info("Websocket %s closed after the simulation finished (%s).", self.url, reason)
                self._closed = True
                return
            if retry_now:
                logger.info("Websocket %s: %s; retrying with a new token.", self.url, reason)
                continue
            if opened_at is not None and time.monotonic() - opened_at > self._healthy_after:
                delays = self._delays()  # it was a healthy connection: start the backoff over
            delay = next(delays)
            logger.warning(
                "Websocket %s %s (%s); reconnecting in %.1f s.",
                self.url,
                "lost" if opened_at is not None else "unavailable",
                reason,
                delay,
            )
            await asyncio.sleep(delay)

    def _dispatch(self, frame: bytes) -> None:
        try:
            message = json_codec.loads(frame)  # bytes: UTF-8 checked, as for Redis messages
        except ValueError:
            self._drop("that is not UTF-8 JSON (or is nested too deeply)", frame)
            return
        if not isinstance(message, dict):
            self._drop("that is not a JSON object", frame)
            return
        try:
            self._on_message(message)
        except Exception:  # noqa: BLE001 - one bad message must not drop the socket
            self.dropped_messages += 1
            # No payload in the record: it may be huge, or too deep for repr().
            self._faults.error("Handling a websocket message from %s failed", self.url, exc_info=True)

    def _drop(self, why: str, frame: bytes) -> None:
        self.dropped_messages += 1
        self._faults.warning(
            "Dropped a websocket frame from %s %s: %r (%d bytes)", self.url, why, frame[:SHOWN_BYTES], len(frame)
        )


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"JWT {token}"} if token else {}
