"""Websocket side without a server: frame decoding, the REST.md 4.2 dispatch rule, response
matching, the aggregator's bookkeeping, reconnect backoff and the eager/lazy socket rule."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any

import pytest

from gsy_e_sdk.aggregator import Aggregator, AggregatorWebsocketMessageReceiver
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient, overrides_event_hooks
from gsy_e_sdk.hooks import HookRunner
from gsy_e_sdk.rest_market import RestMarketClient
from gsy_e_sdk.websocket_connection import WebsocketConnection, backoff_delays
from gsy_e_sdk.websocket_device import CommandResponseTimeout, DeviceWebsocketMessageReceiver

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
    delays = backoff_delays(0.5, 30.0, random.Random(7))
    values = [next(delays) for _ in range(12)]
    ceilings = [min(30.0, 0.5 * 2**n) for n in range(12)]
    assert all(ceiling / 2 <= value <= ceiling for value, ceiling in zip(values, ceilings, strict=True))
    assert values[-1] >= 15.0 and max(values) <= 30.0
    assert len(set(values)) == len(values)  # jittered, not a fixed ladder


def test_dispatch_rule_events_commands_and_neither():
    client = RecordingClient()
    receiver = DeviceWebsocketMessageReceiver(client)
    for message in (
        {"event": "market", "market_slot": "x"},
        {"event": "tick", "slot_completion": "0%"},
        {"event": "trade", "trade_list": []},
        {"command": "offer", "transaction_id": "t"},
        {"neither": True},
        {"event": "finish"},
    ):
        receiver.received_message(message)
    assert client._hooks.wait_idle(5)
    names = [name for name, _ in client.calls]
    # The device socket has no 10 % filter; every event and response reaches on_event_or_response.
    assert names == [
        "on_market_slot",
        "on_event_or_response",
        "on_tick",
        "on_event_or_response",
        "on_trade",
        "on_event_or_response",
        "on_event_or_response",
        "on_finish",
        "on_event_or_response",
    ]
    assert client.is_finished


def test_responses_are_matched_by_command_and_transaction_id():
    client = RecordingClient()
    receiver = DeviceWebsocketMessageReceiver(client)
    receiver.expect("register", "tx-1")
    result: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: result.update(answer=receiver.wait_for_command_response("register", "tx-1", timeout=5))
    )
    waiter.start()
    receiver.received_message({"command": "register", "transaction_id": "tx-other", "registered": False})
    receiver.received_message({"command": "unregister", "transaction_id": "tx-1"})
    receiver.received_message({"command": "register", "transaction_id": "tx-1", "registered": True})
    waiter.join(5)
    assert result["answer"]["registered"] is True and client.registered is True
    # Answers nobody waited for are kept for a later wait (and given out once).
    kept = receiver.wait_for_command_response("register", "tx-other", timeout=0.1)
    assert kept["registered"] is False
    with pytest.raises(CommandResponseTimeout):
        receiver.wait_for_command_response("register", "tx-other", timeout=0.1)


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


class ConnectedSocket:
    is_connected = True


def bare_aggregator(accept_all_devices: bool = True) -> Aggregator:
    """An ``Aggregator`` with its bookkeeping but no server behind it."""
    aggregator = Aggregator.__new__(Aggregator)
    aggregator._init_aggregator_state("unit", accept_all_devices)
    aggregator.aggregator_uuid = "agg-1"
    aggregator.dispatcher = AggregatorWebsocketMessageReceiver(aggregator)
    aggregator._socket = ConnectedSocket()
    return aggregator


def test_selected_by_device_events_keep_a_list_without_duplicates():
    aggregator = bare_aggregator()
    receive = aggregator.dispatcher.received_message
    for device in ("a", "b", "a", "b", "c"):
        receive({"event": "selected_by_device", "device_uuid": device})
    receive({"event": "unselected_by_device", "device_uuid": "b"})
    receive({"event": "unselected_by_device", "device_uuid": "not-there"})
    assert aggregator.device_uuid_list == ["a", "c"]
    picky = bare_aggregator(accept_all_devices=False)
    picky.dispatcher.received_message({"event": "selected_by_device", "device_uuid": "a"})
    assert picky.device_uuid_list == []


def test_aggregator_events_update_the_tree_before_hooks_and_filter_early_ticks():
    seen: list[tuple[str, Any]] = []

    class Recording(Aggregator):
        def on_market_slot(self, market_info: dict) -> None:
            seen.append(("slot", self.get_uuid_from_area_name("PV")))

        def on_tick(self, tick_info: dict) -> None:
            seen.append(("tick", tick_info["slot_completion"]))

    aggregator = Recording.__new__(Recording)
    aggregator._init_aggregator_state("unit", True)
    aggregator.aggregator_uuid = "agg-1"
    aggregator.dispatcher = AggregatorWebsocketMessageReceiver(aggregator)
    assert aggregator.get_uuid_from_area_name("PV") is None  # nothing known yet
    receive = aggregator.dispatcher.received_message
    receive({"event": "market", "grid_tree": GRID_TREE, "market_slot": "2026-01-01T00:00"})
    receive({"event": "tick", "grid_tree": GRID_TREE, "slot_completion": "0%"})
    receive({"event": "tick", "grid_tree": GRID_TREE, "slot_completion": "20%"})
    assert aggregator.wait_for_hooks(5)
    assert seen == [("slot", "pv"), ("tick", "20%")]
    assert aggregator.calculate_grid_fee("pv", "root") == 3
    assert set(aggregator.latest_grid_tree_flat) == {"root", "house", "pv"}


def test_batch_answers_resolve_the_waiting_call_and_finish_releases_the_others():
    aggregator = bare_aggregator()
    receiver = aggregator.dispatcher
    receiver.expect("batch_commands", "batch-1")
    receiver.expect("batch_commands", "batch-2")
    envelope = {
        "command": "batch_commands",
        "transaction_id": "batch-1",
        "aggregator_uuid": "agg-1",
        "responses": {"pv": [{"command": "offer", "status": "error", "error_message": "x"}]},
    }
    receiver.received_message({**envelope, "aggregator_uuid": "another-aggregator"})
    receiver.received_message(envelope)
    assert receiver.wait_for_command_response("batch_commands", "batch-1", 1) == envelope
    results: list[Any] = []
    waiter = threading.Thread(
        target=lambda: results.append(receiver.wait_for_command_response("batch_commands", "batch-2", 30))
    )
    waiter.start()
    time.sleep(0.1)
    started = time.monotonic()
    receiver.received_message({"event": "finish"})
    waiter.join(5)
    assert results == [None] and time.monotonic() - started < 2 and aggregator.is_finished


def test_a_failed_batch_post_keeps_the_commands_and_unknown_uuids_raise():
    aggregator = bare_aggregator()
    aggregator.device_uuid_list.extend(["pv", "load"])
    posted: list[dict] = []
    aggregator._request = lambda method, url, body=None: posted.append(body)  # returns None: failed
    aggregator.aggregator_prefix = "http://unused/"
    aggregator.add_to_batch_commands.offer_energy("pv", 1, 2).bid_energy("load", 1, 30)
    assert aggregator.execute_batch_commands() is None
    assert aggregator.commands_buffer_length == 2  # back in the buffer for the next attempt
    assert posted[0]["batch_commands"] == {
        "pv": [posted[0]["batch_commands"]["pv"][0]],
        "load": [posted[0]["batch_commands"]["load"][0]],
    }
    assert posted[0]["aggregator_uuid"] == "agg-1" and posted[0]["transaction_id"]
    aggregator._request = lambda method, url, body=None: {"status": "accepted"}
    assert aggregator.execute_batch_commands(is_blocking=False) is None
    assert aggregator.commands_buffer_length == 0
    aggregator.add_to_batch_commands.offer_energy("stranger", 1, 2)
    with pytest.raises(Exception, match="stranger not in list of selected device uuids"):
        aggregator.execute_batch_commands()
    aggregator.is_finished = True
    aggregator.add_to_batch_commands.offer_energy("pv", 1, 2)
    assert aggregator.execute_batch_commands() is None


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
