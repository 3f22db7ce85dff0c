"""The REST transport without a server: the websocket dispatch rule (REST.md 4.2), answers
matched to their calls, the aggregator socket's selections and batch answers, and batches
whose POST fails. HTTP is answered by a script and no socket opens; the client logic is the
real one (``AreaClient``, ``AggregatorCore``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gsy_e_sdk.aggregator_core import AggregatorCore
from gsy_e_sdk.clients.area_client import AssetClient
from gsy_e_sdk.hooks import EventHooks
from gsy_e_sdk.transports.rest import RestAggregatorTransport, RestAreaTransport, RestSettings
from gsy_e_sdk.websocket_device import CommandResponseTimeout


class FakeAuth:
    current = "unused"

    def token(self) -> str:
        return "unused"


SETTINGS = RestSettings("sim-1", "http://exchange.invalid", "ws://exchange.invalid/external-ws", FakeAuth())  # type: ignore[arg-type]


class Offline:
    """HTTP answered from ``replies`` ({path suffix: answer}, default ``{"status": "accepted"}``);
    the socket counts as connected without opening."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, dict | None]] = []
        self.replies: dict[str, Any] = {}

    def http(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        self.posts.append((method, url, body))
        for suffix, answer in self.replies.items():
            if url.endswith(suffix):
                return answer
        return {"status": "accepted"}

    def ensure_websocket(self) -> None:
        pass


class OfflineArea(Offline, RestAreaTransport):
    def __init__(self, area_uuid: str) -> None:
        Offline.__init__(self)
        RestAreaTransport.__init__(self, SETTINGS, area_uuid)


class OfflineAggregator(Offline, RestAggregatorTransport):
    def __init__(self) -> None:
        Offline.__init__(self)
        RestAggregatorTransport.__init__(self, SETTINGS, error=RuntimeError)
        self.replies = {"list-aggregators/": [], "create-aggregator/": {"uuid": "agg-1"}}


class Listening(AssetClient, EventHooks):
    """An asset with every hook, recording their calls."""

    drop_stale_ticks = False

    def __init__(self, transport: RestAreaTransport) -> None:
        self.calls: list[str] = []
        super().__init__(transport, "asset-1", "asset-1")

    def on_market_slot(self, market_info: dict) -> None:
        self.calls.append("on_market_slot")

    def on_tick(self, tick_info: dict) -> None:
        self.calls.append("on_tick")

    def on_trade(self, trade_info: dict) -> None:
        self.calls.append("on_trade")

    def on_finish(self, finish_info: dict) -> None:
        self.calls.append("on_finish")

    def on_event_or_response(self, message: dict) -> None:
        self.calls.append("on_event_or_response")


class Recording(AggregatorCore):
    drop_stale_ticks = False

    def __init__(self, transport: OfflineAggregator | None = None, **kwargs: Any) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.transport = transport or OfflineAggregator()
        super().__init__(self.transport, "unit", **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        self.seen.append(("slot", self.get_uuid_from_area_name("PV")))

    def on_tick(self, tick_info: dict) -> None:
        self.seen.append(("tick", tick_info["slot_completion"]))

    def on_event_or_response(self, message: dict) -> None:
        self.seen.append(("any", message.get("event") or message.get("command")))


def test_dispatch_rule_events_commands_and_neither() -> None:
    transport = OfflineArea("asset-1")
    asset = Listening(transport)
    for message in (
        {"event": "market", "market_slot": "x"},
        {"event": "tick", "slot_completion": "0%"},
        {"event": "trade", "trade_list": []},
        {"command": "offer", "transaction_id": "t"},
        {"neither": True},
        {"event": ["tick"]},  # malformed: dropped
        {"event": "finish"},
    ):
        transport.dispatcher.received_message(message)
    assert asset.wait_for_hooks(5) and asset.is_finished
    # The device socket has no 10 % filter; every event and response reaches on_event_or_response.
    assert asset.calls == [
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


def test_answers_reach_the_bookkeeping_then_their_call_and_are_kept_when_early() -> None:
    transport = OfflineArea("asset-1")
    asset = Listening(transport)
    receiver = transport.dispatcher
    receiver.expect("register", "tx-1")
    result: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: result.update(answer=receiver.wait_for_command_response("register", "tx-1", timeout=5))
    )
    waiter.start()
    receiver.received_message({"command": "register", "transaction_id": "tx-other", "registered": False})
    receiver.received_message({"command": "unregister", "transaction_id": "tx-1", "status": "ready"})
    receiver.received_message({"command": "register", "transaction_id": "tx-1", "registered": True})
    waiter.join(5)
    assert result["answer"]["registered"] is True and asset.registered is True
    # Answers nobody waited for are kept for a later wait (and given out once).
    assert receiver.wait_for_command_response("register", "tx-other", timeout=0.1)["registered"] is False
    with pytest.raises(CommandResponseTimeout):
        receiver.wait_for_command_response("register", "tx-other", timeout=0.1)


def test_commands_post_to_their_routes_and_a_falsy_acknowledgement_means_not_posted(caplog) -> None:
    transport = OfflineArea("asset-1")
    asset = Listening(transport)
    assert asset.set_energy_forecast({"2026-06-01T10:30": 0.4}, do_not_wait=True) is None
    transport.replies["grid-fee/"] = {}
    assert transport.send("grid_fees", {"fee_const": 1, "transaction_id": "t"}, wait=True) is None
    assert "grid_fees was not posted (acknowledgement {})" in caplog.text
    asset.select_aggregator("agg-1")
    assert asset.active_aggregator is None  # the scripted answer names no aggregator
    paths = [(method, url.removeprefix("http://exchange.invalid")) for method, url, _ in transport.posts]
    assert paths == [
        ("POST", "/external-connection/api/sim-1/asset-1/set-energy-forecast/"),
        ("POST", "/external-connection/api/sim-1/asset-1/grid-fee/"),
        ("POST", "/external-connection/aggregator-api/sim-1/select-aggregator/"),
    ]
    assert transport.posts[-1][2] == {
        "aggregator_uuid": "agg-1",
        "device_uuid": "asset-1",
        "transaction_id": transport.posts[-1][2]["transaction_id"],
    }


def test_the_aggregator_socket_keeps_the_device_list_and_a_local_selection_shows_at_once() -> None:
    aggregator = Recording()
    assert aggregator.aggregator_uuid == "agg-1" and aggregator.transport.websocket_url().endswith("/aggregator/agg-1/")
    receive = aggregator.transport.dispatcher.received_message
    for device in ("a", "b", "a", "b", "c"):
        receive({"event": "selected_by_device", "device_uuid": device})
    receive({"event": "unselected_by_device", "device_uuid": "b"})
    receive({"event": "unselected_by_device", "device_uuid": "not-there"})
    receive({"event": "selected_by_device", "device_uuid": ["x"]})  # malformed: dropped
    assert aggregator.device_uuid_list == ["a", "c"]
    assert (
        aggregator.wait_for_hooks(5)
        and aggregator.seen == [("any", "selected_by_device")] * 5 + [("any", "unselected_by_device")] * 2
    )
    # An asset of this process selecting it: listed before the websocket event comes.
    asset = OfflineArea("d")
    asset.replies["select-aggregator/"] = {"aggregator_uuid": "agg-1"}
    client = Listening(asset)
    client.select_aggregator("agg-1")
    assert client.active_aggregator == "agg-1" and aggregator.device_uuid_list == ["a", "c", "asset-1"]
    picky = Recording(accept_all_devices=False)
    picky.transport.dispatcher.received_message({"event": "selected_by_device", "device_uuid": "a"})
    assert picky.device_uuid_list == []


def test_aggregator_events_update_the_tree_before_the_hooks_and_filter_early_ticks() -> None:
    tree = {
        "root": {
            "area_name": "Grid",
            "current_market_fee": 1,
            "children": {
                "house": {
                    "area_name": "House",
                    "current_market_fee": 2,
                    "children": {"pv": {"area_name": "PV", "asset_info": {"available_energy_kWh": 1.0}}},
                }
            },
        }
    }
    aggregator = Recording()
    receive = aggregator.transport.dispatcher.received_message
    receive({"event": "market", "grid_tree": tree, "market_slot": "2026-01-01T00:00"})
    receive({"event": "tick", "grid_tree": tree, "slot_completion": "0%"})
    receive({"event": "tick", "grid_tree": tree, "slot_completion": "20%"})
    assert aggregator.wait_for_hooks(5)
    assert [call for call in aggregator.seen if call[0] != "any"] == [("slot", "pv"), ("tick", "20%")]
    assert aggregator.calculate_grid_fee("pv", "root") == 3
    assert set(aggregator.latest_grid_tree_flat) == {"root", "house", "pv"}


def test_batch_answers_resolve_their_call_and_finish_releases_the_others() -> None:
    aggregator = Recording()
    aggregator._on_selection("pv", True)
    receiver = aggregator.transport.dispatcher
    aggregator.add_to_batch_commands.offer_energy("pv", 1, 2)
    result: dict[str, Any] = {}
    caller = threading.Thread(target=lambda: result.update(answer=aggregator.execute_batch_commands()))
    caller.start()
    deadline = time.monotonic() + 5
    while not aggregator.transport.posts[-1][1].endswith("batch-commands/") and time.monotonic() < deadline:
        time.sleep(0.01)
    body = aggregator.transport.posts[-1][2]
    assert body["aggregator_uuid"] == "agg-1" and body["batch_commands"]["pv"][0]["type"] == "offer"
    envelope = {
        "command": "batch_commands",
        "transaction_id": body["transaction_id"],
        "aggregator_uuid": "agg-1",
        "responses": {"pv": [{"command": "offer", "status": "error", "error_message": "x"}]},
    }
    receiver.received_message({**envelope, "aggregator_uuid": "another-aggregator"})  # not ours: ignored
    receiver.received_message({**envelope, "responses": []})  # malformed: dropped
    receiver.received_message(envelope)
    caller.join(5)
    assert result == {"answer": envelope}

    aggregator.add_to_batch_commands.offer_energy("pv", 1, 2)
    caller = threading.Thread(target=lambda: result.update(answer=aggregator.execute_batch_commands()))
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    receiver.received_message({"event": "finish"})
    caller.join(5)
    assert result == {"answer": None} and time.monotonic() - started < 2 and aggregator.is_finished


def test_a_failed_batch_post_keeps_the_commands_and_unknown_uuids_raise() -> None:
    aggregator = Recording()
    aggregator.device_uuid_list.extend(["pv", "load"])
    aggregator.transport.replies["batch-commands/"] = None  # the POST failed
    aggregator.add_to_batch_commands.offer_energy("pv", 1, 2).bid_energy("load", 1, 30)
    assert aggregator.execute_batch_commands() is None
    assert aggregator.commands_buffer_length == 2  # back in the buffer for the next attempt
    posted = aggregator.transport.posts[-1][2]
    assert set(posted["batch_commands"]) == {"pv", "load"} and posted["transaction_id"]
    aggregator.transport.replies["batch-commands/"] = {"status": "accepted"}
    assert aggregator.execute_batch_commands(is_blocking=False) is None
    assert aggregator.commands_buffer_length == 0
    aggregator.add_to_batch_commands.offer_energy("stranger", 1, 2)
    with pytest.raises(Exception, match="stranger not in list of selected device uuids"):
        aggregator.execute_batch_commands()


def test_an_aggregator_of_the_same_name_is_reused_and_a_refusal_raises() -> None:
    reused = OfflineAggregator()
    reused.replies["list-aggregators/"] = [{"name": "unit", "uuid": "old"}, {"name": "other", "uuid": "x"}]
    assert Recording(reused).aggregator_uuid == "old"
    assert [url.rsplit("/", 2)[-2] for _, url, _ in reused.posts] == ["list-aggregators"]
    refused = OfflineAggregator()
    refused.replies["create-aggregator/"] = None
    with pytest.raises(RuntimeError, match="Could not create aggregator 'unit'"):
        Recording(refused)
