"""No message stops or stalls a reader: garbage between real events, over Redis and websockets.

Each kind of garbage the issue names (deeply nested JSON, bytes that are not UTF-8, invalid JSON,
JSON that is not an object, a huge message, objects with wrong field types, text frames) is sent
on a live channel or socket again and again while a real exchange runs. Every real event must
still reach the hooks, in order, with no reconnect and no gap; the garbage reaches none and is
logged rate-limited.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gsy_e_sdk.aggregator import Aggregator
from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.redis_aggregator import RedisAggregator
from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.redis_connection import RedisConnection, get_connection
from tests.integration.test_sdk_rest import LOAD, PV, wait_for

pytestmark = pytest.mark.integration

WRONG_TYPES = [  # objects, with fields of the wrong type
    {"event": ["tick"]},
    {"event": "tick", "slot_completion": 40},
    {"event": "market", "grid_tree": [1, 2]},
    {"event": "trade", "trade_list": {"a": 1}},
    {"transaction_id": 5, "responses": []},
    {"status": "SELECTED", "aggregator_uuid": ["x"], "device_uuid": {}},
]
DEEP = b"[" * 3000 + b"]" * 3000  # killed the reader with a RecursionError before
HUGE = json.dumps(list(range(300_000))).encode()  # 2 MB, not an object
GARBAGE = [
    DEEP,
    b"{" * 2000 + b"}" * 2000,  # invalid and deep at once
    b"\xff\xfe\xfd not UTF-8",  # reset the connection, ~1 s deaf per message, before
    b'{"event": "tick", "slot_completion": "\xff%"}',  # JSON-looking, not UTF-8
    b"not json at all",
    b"[1, 2, 3]",
    b"null",
    b'"a string"',
    b"42",  # JSON, not objects
    HUGE,
    *(json.dumps(payload).encode() for payload in WRONG_TYPES),
]
# Over a socket: text frames (of valid and invalid UTF-8), and what the aggregator socket carries.
FRAMES = [(frame, False) for frame in GARBAGE] + [
    (b"not json in a text frame", True),
    (DEEP, True),
    (b"\xff\xfe text frame, not UTF-8", True),
    (b'{"command": ["register"]}', False),
    (b'{"event": "selected_by_device", "device_uuid": ["x"]}', False),
]


class Collector:
    """Records what reaches ``on_event_or_response``; keeps every tick so nothing is skipped."""

    drop_stale_ticks = False

    def _start_collecting(self) -> None:
        self.received: list[dict] = []

    def on_event_or_response(self, message: dict) -> None:
        self.received.append(message)


class RedisCollector(Collector, RedisAggregator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._start_collecting()
        super().__init__(*args, **kwargs)


class RestCollector(Collector, Aggregator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._start_collecting()
        super().__init__(*args, **kwargs)


class Spammer:
    """Publishes every kind of garbage on the given channels, round after round, until stopped.

    The huge payload goes out every tenth round only: the point is to interleave garbage with
    real events, not to saturate a 2-core machine's Redis.
    """

    def __init__(self, redis_url: str, channel_names: list[str]) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.channels = channel_names
        self.sent = 0
        self._rounds = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def round(self) -> None:
        payloads = GARBAGE if next(self._rounds) % 10 == 0 else [p for p in GARBAGE if p is not HUGE]
        for payload in payloads:
            for channel in self.channels:
                self.redis.publish(channel, payload)
                self.sent += 1

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.round()

    def __enter__(self) -> Spammer:
        self.round()  # before anything else: requests are answered amid garbage
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.redis.close()


def record(redis_url: str, channel: str) -> tuple[list[bytes], Callable[[], None]]:
    """Every payload published on ``channel``, as bytes, in order; and how to stop recording."""
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    payloads: list[bytes] = []
    pubsub.subscribe(**{channel: lambda message: payloads.append(message["data"])})
    thread = pubsub.run_in_thread(sleep_time=0.01, daemon=True)

    def stop() -> None:
        thread.stop()
        thread.join(2)
        client.close()

    return payloads, stop


def garbage_log_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(("Dropped", "Handling"))]


def test_garbage_on_redis_channels_reaches_no_hook_and_costs_no_event(start_exchange, redis_url, caplog) -> None:
    start_exchange(
        "external_devices.json",
        "--duration",
        "1h",
        "--slot-length",
        "15m",
        "--tick-length",
        "90s",
        "--pace",
        "1.5",
        "--start-when-selected",
        "2",
    )
    connection = get_connection(redis_url)
    reconnections, dropped = connection.reconnections, connection.dropped_messages
    with caplog.at_level(logging.WARNING), Spammer(redis_url, [channels.AGGREGATOR_RESPONSE]) as on_answers:
        # CREATE, register and SELECT are all answered on a channel full of garbage.
        aggregator = RedisCollector("garbage_aggr", redis_url=redis_url)
        published, stop_recording = record(redis_url, aggregator.channel_names.events)
        with Spammer(redis_url, [aggregator.channel_names.events, aggregator.channel_names.batch_commands_response]):
            for name in ("load", "pv"):
                RedisAssetClient(name, redis_url=redis_url).select_aggregator(aggregator.aggregator_uuid)
            wait_for(lambda: aggregator.is_finished, 60, "the finish event")
        stop_recording()
    assert aggregator.wait_for_hooks(10)
    real = [json.loads(payload) for payload in published if payload not in GARBAGE]
    assert len(real) > 20 and real[-1]["event"] == "finish"
    assert aggregator.received == real  # every real event, in order, and nothing else
    assert connection.reader_alive and connection.reconnections == reconnections
    assert connection.dropped_messages - dropped >= on_answers.sent * 9 / len(GARBAGE)  # 10 of 16 are not objects
    # Hundreds of dropped messages, a handful of log lines.
    assert 0 < len(garbage_log_records(caplog)) <= 30, len(garbage_log_records(caplog))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the SystemExit below
def test_the_reader_says_when_its_thread_has_died(redis_url, redis_client, caplog) -> None:
    """Nothing a message does ends the reader; should the thread end anyway, health checks hear it."""
    connection = RedisConnection(redis_url)
    try:
        connection.subscribe({"faults/exit": lambda _channel, _payload: exec("raise SystemExit")})
        assert connection.reader_alive
        with caplog.at_level(logging.CRITICAL, logger="gsy_e_sdk.wire.redis_connection"):
            redis_client.publish("faults/exit", "{}")
            wait_for(lambda: not connection.reader_alive, 5, "the reader thread to end")
        assert "The Redis reader for" in caplog.text and "stopped" in caplog.text
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GarbageProxy:
    """A websocket proxy to the facade that sends a garbage frame before every real one."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.forwarded: list[dict] = []
        self.garbage_sent = 0
        self._frames: Iterator[tuple[bytes, bool]] = itertools.cycle(FRAMES)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def websocket_domain(self) -> str:
        return f"ws://127.0.0.1:{self.port}/external-ws"

    async def _relay(self, client: ServerConnection) -> None:
        headers = {"Authorization": client.request.headers["Authorization"]}
        async with connect(self.upstream + client.request.path, additional_headers=headers) as server:
            try:
                async for message in server:
                    frame, text = next(self._frames)
                    await client.send(frame, text=text)
                    self.garbage_sent += 1
                    self.forwarded.append(json.loads(message))
                    await client.send(message)
            except ConnectionClosed:
                pass  # the facade stops when the run ends: keep the client's socket open regardless
        await client.wait_closed()

    async def _serve(self) -> None:
        self._server = await serve(self._relay, "127.0.0.1", self.port, max_size=None)
        self._ready.set()

    def __enter__(self) -> GarbageProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        assert self._ready.wait(5)
        return self

    def __exit__(self, *_: object) -> None:
        async def shutdown() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def test_garbage_frames_on_the_websocket_reach_no_hook_and_cost_no_event(facade, closing, redis_url, caplog) -> None:
    exchange = facade(
        "--duration",
        "1h",
        "--slot-length",
        "15m",
        "--tick-length",
        "90s",
        "--pace",
        "1.5",
        "--start-when-selected",
        "2",
    )
    with (
        caplog.at_level(logging.WARNING),
        GarbageProxy(f"ws://127.0.0.1:{exchange.domain.rsplit(':', 1)[1]}") as proxy,
        Spammer(redis_url, [channels.AGGREGATOR_RESPONSE]),
    ):
        aggregator = closing(RestCollector("garbage_rest", websockets_domain_name=proxy.websocket_domain))
        # The facade's own Redis reader gets garbage on the aggregator's events channel too.
        with Spammer(redis_url, [channels.aggregator_events(aggregator.aggregator_uuid)]):
            for uuid in (LOAD, PV):
                closing(RestAssetClient(uuid)).select_aggregator(aggregator.aggregator_uuid)
            wait_for(lambda: aggregator.is_finished, 60, f"the finish event:\n{exchange.process.output()[-2000:]}")
            assert aggregator.wait_for_hooks(10)
        socket_ = aggregator._socket
        connections, alive, dropped = socket_.connections, socket_.reader_alive, socket_.dropped_messages
    # The facade relays any JSON object published on the events channel: drop those from the count.
    real = [message for message in proxy.forwarded if message not in WRONG_TYPES]
    assert len(real) > 20 and real[-1].get("event") == "finish", real[-3:]
    assert aggregator.received == real  # every real frame, in order, and nothing else
    assert connections == 1 and alive
    assert dropped >= proxy.garbage_sent * 12 / len(FRAMES) - 1
    assert 0 < len(garbage_log_records(caplog)) <= 40, len(garbage_log_records(caplog))
