"""Websocket side without a server: frame decoding, the REST.md 4.2 dispatch rule, response
matching, the aggregator's bookkeeping, reconnect backoff and the eager/lazy socket rule."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

from gsy_e_sdk.clients.rest_asset_client import RestAssetClient, overrides_event_hooks
from gsy_e_sdk.hooks import HookRunner
from gsy_e_sdk.rest_market import RestMarketClient
from gsy_e_sdk.websocket_connection import WebsocketConnection
from gsy_e_sdk.websocket_device import DeviceWebsocketMessageReceiver
from gsy_e_sdk.wire.retry import Backoff, reconnect_delays

GRID_TREE = {
    "root": {
        "area_name": "Grid",
        "current_market_fee": 1,
        "last_market_fee": 1,
        "children": {
            "house": {
                "area_name": "House",
                "current_market_fee": 2,
                "last_market_fee": 2,
                "children": {"pv": {"area_name": "PV", "asset_info": {"available_energy_kWh": 1.0}}},
            }
        },
    }
}


class RecordingClient:
    """What the device receiver needs from a client: hooks, a runner, two attributes."""

    def __init__(self) -> None:
        self._hooks = HookRunner()
        self.registered = False
        self.is_finished = False
        self.calls: list[tuple[str, dict]] = []

    def on_market_slot(self, message: dict) -> None:
        self.calls.append(("on_market_slot", message))

    def on_tick(self, message: dict) -> None:
        self.calls.append(("on_tick", message))

    def on_trade(self, message: dict) -> None:
        self.calls.append(("on_trade", message))

    def on_finish(self, message: dict) -> None:
        self.calls.append(("on_finish", message))

    def on_event_or_response(self, message: dict) -> None:
        self.calls.append(("on_event_or_response", message))


class FakeAuth:
    def token(self) -> str:
        return "unused"


def test_binary_and_text_frames_are_decoded_and_junk_is_skipped(caplog):
    received: list[dict] = []
    connection = WebsocketConnection("ws://unused/", FakeAuth(), received.append)
    connection._dispatch(json.dumps({"event": "tick", "n": 1}).encode())
    connection._dispatch(json.dumps({"command": "register", "ü": "é"}, ensure_ascii=False).encode())
    with caplog.at_level(logging.WARNING):
        connection._dispatch(b"\xff\xfe not utf-8")
        connection._dispatch(b"[1, 2]")
        connection._dispatch(b"{not json")
        connection._dispatch(b"[" * 3000 + b"]" * 3000)
    assert received == [{"event": "tick", "n": 1}, {"command": "register", "ü": "é"}]
    assert caplog.text.count("Dropped a websocket frame") == 4 and connection.dropped_messages == 4


def test_a_failing_handler_does_not_escape_the_socket(caplog):
    def explode(_message: dict) -> None:
        raise RuntimeError("boom")

    connection = WebsocketConnection("ws://unused/", FakeAuth(), explode)
    with caplog.at_level(logging.ERROR):
        connection._dispatch(b'{"event": "tick"}')
    assert "Handling a websocket message from ws://unused/ failed" in caplog.text


def test_reader_alive_is_true_while_the_socket_task_runs_even_when_login_fails():
    """A token provider that raises (no credentials) used to end the socket's task for good."""

    class NoCredentials:
        def token(self) -> str:
            raise KeyError("API_CLIENT_PASSWORD")

    connection = WebsocketConnection(
        "ws://127.0.0.1:9/", NoCredentials(), lambda _message: None, delays=lambda: iter(lambda: 0.05, None)
    )
    assert not connection.reader_alive  # not started
    connection.start()
    time.sleep(0.3)  # several failed attempts
    assert connection.reader_alive and not connection.is_connected
    connection.close()
    deadline = time.monotonic() + 2
    while connection.reader_alive and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not connection.reader_alive


def test_reconnect_delays_grow_jittered_to_the_cap():
    delays = reconnect_delays(Backoff(base=0.5, cap=30.0))
    values = [next(delays) for _ in range(12)]
    ceilings = [min(30.0, 0.5 * 2**n) for n in range(12)]
    assert all(ceiling / 2 <= value <= ceiling for value, ceiling in zip(values, ceilings, strict=True))
    assert values[-1] >= 15.0 and max(values) <= 30.0
    assert len(set(values)) == len(values)  # jittered, not a fixed ladder


def test_a_lost_socket_answers_outstanding_calls_with_none_at_once(caplog):
    receiver = DeviceWebsocketMessageReceiver(RecordingClient())
    receiver.expect("register", "tx-lost")
    results: list[Any] = []
    waiter = threading.Thread(
        target=lambda: results.append(receiver.wait_for_command_response("register", "tx-lost", timeout=30))
    )
    waiter.start()
    time.sleep(0.1)
    with caplog.at_level(logging.WARNING):
        receiver.connection_lost()
    waiter.join(5)
    assert results == [None] and "1 command answer(s) outstanding" in caplog.text
    receiver.connection_lost()  # nothing outstanding: nothing to say
    assert caplog.text.count("outstanding") == 1


def test_a_missing_answer_times_out_as_an_assertion_error():
    receiver = DeviceWebsocketMessageReceiver(RecordingClient())
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"grid_fees.*tx-9"):
        receiver.wait_for_command_response("grid_fees", "tx-9", timeout=0.2)
    assert 0.15 < time.monotonic() - started < 2


def test_sockets_open_eagerly_only_for_clients_that_want_events():
    class Plain(RestAssetClient):
        def helper(self) -> None:
            pass

    class Listening(RestAssetClient):
        def on_tick(self, tick_info: dict) -> None:
            pass

    class Observing(RestMarketClient):
        def on_event_or_response(self, message: dict) -> None:
            pass

    assert not overrides_event_hooks(RestAssetClient, RestAssetClient)
    assert not overrides_event_hooks(Plain, RestAssetClient)
    assert overrides_event_hooks(Listening, RestAssetClient)
    assert not overrides_event_hooks(RestMarketClient, RestMarketClient)
    assert overrides_event_hooks(Observing, RestMarketClient)
