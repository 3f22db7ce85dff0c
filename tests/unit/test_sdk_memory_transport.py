"""The SDK's client logic over the in-memory exchange double: no Redis, no HTTP, no socket.

The same ``AreaClient``/``AggregatorCore`` code the Redis and REST classes bind to their
transports: registration and selection, batches answered per area, events reaching the hooks in
order after the bookkeeping (grid tree, names, grid fees), garbage dropped, a refused batch kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

from gsy_e_sdk import aggregator_core
from gsy_e_sdk.aggregator_core import AggregatorCore
from gsy_e_sdk.clients.area_client import AssetClient, MarketClient
from gsy_e_sdk.hooks import EventHooks
from gsy_e_sdk.transports.memory import MemoryAggregatorTransport, MemoryAreaTransport, MemoryExchange
from gsy_e_sdk.wire.log_limit import RateLimitedLog

AREAS = {"pv": "uuid-pv", "load": "uuid-load", "house": "uuid-house"}


def node(name: str, fees: tuple[float, float] | None = None, **children: dict) -> dict[str, Any]:
    """A grid-tree node named ``name`` (its uuid is its name); markets have fees and children."""
    result: dict[str, Any] = {"area_name": name}
    if fees is not None:
        result["last_market_fee"], result["current_market_fee"] = fees
        result["children"] = children
    else:
        result["asset_info"] = {"available_energy_kWh": 1.0}
    return result


def worked_example_tree() -> dict[str, Any]:
    """The grid of SDK_API.md 8's worked example: (last, current) fees in ct/kWh."""
    return {
        "Grid": node(
            "Grid",
            (10, 11),
            **{
                "Market Maker": node("Market Maker"),
                "Street 1": node(
                    "Street 1",
                    (1, 2),
                    **{
                        "House 1.1": node("House 1.1", (1.1, 2.1), **{"Load 1.1": node("Load 1.1")}),
                        "House 1.2": node(
                            "House 1.2", (1.2, 2.2), **{"Load 1.2": node("Load 1.2"), "PV 1.2": node("PV 1.2")}
                        ),
                    },
                ),
                "Street 2": node(
                    "Street 2",
                    (2, 3),
                    **{
                        "House 2.1": node(
                            "House 2.1", (2.1, 3.1), **{"PV 2.1": node("PV 2.1"), "Load 2.1": node("Load 2.1")}
                        )
                    },
                ),
                "Street 3": node("Street 3", (3, 4), **{"Load 3": node("Load 3"), "PV 3": node("PV 3")}),
            },
        )
    }


class Recording(AggregatorCore):
    """Records every hook call with what the bookkeeping showed at that moment."""

    drop_stale_ticks = False  # events arrive faster than hooks run: keep every tick

    def __init__(self, exchange: MemoryExchange, **kwargs: Any) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.transport = MemoryAggregatorTransport(exchange, error=LookupError, timeout=0.3)
        super().__init__(self.transport, "agg", **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        self.calls.append(("market", (market_info["market_slot"], self.get_uuid_from_area_name("PV 2.1"))))

    def on_tick(self, tick_info: dict) -> None:
        self.calls.append(("tick", tick_info["slot_completion"]))

    def on_trade(self, trade_info: dict) -> None:
        self.calls.append(("trade", [trade["trade_id"] for trade in trade_info["trade_list"]]))

    def on_finish(self, finish_info: dict) -> None:
        self.calls.append(("finish", self.is_finished))

    def on_finished(self, finish_info: dict) -> None:
        self.calls.append(("finished", None))

    def on_event_or_response(self, message: dict) -> None:
        self.calls.append(("any", message.get("event") or message.get("command")))


class Registering(AssetClient):
    def __init__(self, exchange: MemoryExchange, name: str, **kwargs: Any) -> None:
        self.registrations: list[dict] = []
        super().__init__(MemoryAreaTransport(exchange, name, **kwargs), name)

    def on_register(self, registration_info: dict) -> None:
        self.registrations.append(registration_info)


def selected_assets(exchange: MemoryExchange, aggregator: AggregatorCore) -> tuple[AssetClient, AssetClient]:
    pv, load = (Registering(exchange, name) for name in ("pv", "load"))
    for asset in (pv, load):
        asset.register()
        asset.select_aggregator(aggregator.aggregator_uuid)
    return pv, load


def test_register_select_unselect_and_unregister(caplog) -> None:
    exchange = MemoryExchange(AREAS)
    aggregator = Recording(exchange)
    pv = Registering(exchange, "pv")
    assert (pv.registered, pv.area_uuid, pv.active_aggregator) == (False, None, None)

    answer = pv.register()
    assert answer is not None and answer["registered"] is True
    assert pv.registered and pv.area_uuid == "uuid-pv"  # the uuid comes with the answer, as on Redis
    pv.select_aggregator(aggregator.aggregator_uuid)
    # The aggregator knew before the call returned (a batch right after it is accepted).
    assert pv.active_aggregator == aggregator.aggregator_uuid and aggregator.device_uuid_list == ["uuid-pv"]
    assert exchange.selected_by("uuid-pv") == aggregator.aggregator_uuid
    pv.select_aggregator(aggregator.aggregator_uuid)  # again: still listed once
    assert aggregator.device_uuid_list == ["uuid-pv"]
    with caplog.at_level(logging.WARNING):
        pv.select_aggregator("no-such-aggregator")
    assert pv.active_aggregator is None and "SELECT of aggregator no-such-aggregator" in caplog.text
    with pytest.raises(ValueError, match="aggregator_uuid must be a non-empty string"):
        pv.select_aggregator("")
    pv.unselect_aggregator(aggregator.aggregator_uuid)
    assert aggregator.device_uuid_list == [] and exchange.selected_by("uuid-pv") is None

    assert pv.unregister()["status"] == "ready" and not pv.registered
    assert pv.wait_for_hooks(5) and pv.registrations == [answer]
    sent = [(sender, command) for sender, command, _ in exchange.received if sender == "pv"]
    assert sent == [("pv", c) for c in ("register", "SELECT", "SELECT", "SELECT", "UNSELECT", "unregister")]
    aggregator.close()  # gone from the exchange: nobody to select any more
    pv.select_aggregator(aggregator.aggregator_uuid)
    assert pv.active_aggregator is None and aggregator.device_uuid_list == []


def test_non_blocking_registration_still_updates_the_client_and_silence_raises() -> None:
    exchange = MemoryExchange(AREAS)
    load = Registering(exchange, "load")
    assert load.register(is_blocking=False) is None
    assert load.registered and load.area_uuid == "uuid-load"
    ghost = Registering(exchange, "ghost", error=LookupError)
    with pytest.raises(LookupError, match="register of ghost"):
        ghost.register()
    assert not ghost.registered and ghost.area_uuid is None


def test_an_aggregator_that_accepts_no_devices_lists_none() -> None:
    exchange = MemoryExchange(AREAS)
    picky = Recording(exchange, accept_all_devices=False)
    pv = Registering(exchange, "pv")
    pv.register()
    pv.select_aggregator(picky.aggregator_uuid)
    assert pv.active_aggregator == picky.aggregator_uuid and picky.device_uuid_list == []
    taken_over = Recording(exchange, aggregator_uuid="agg-9", device_uuids=["uuid-pv", "uuid-pv", "uuid-load"])
    assert taken_over.aggregator_uuid == "agg-9" and taken_over.device_uuid_list == ["uuid-pv", "uuid-load"]


def test_direct_commands_are_validated_then_answered() -> None:
    exchange = MemoryExchange(AREAS)
    pv = Registering(exchange, "pv")
    answer = pv.set_energy_forecast({"2026-06-01T10:30": 0.4})
    assert (answer["command"], answer["status"]) == ("set_energy_forecast", "ready")
    assert pv.set_energy_measurement({"2026-06-01T10:00": 0.3}, do_not_wait=True) is None
    with pytest.raises(ValueError):
        pv.set_energy_forecast({"2026-06-01T10:30": -1})
    market = MarketClient(MemoryAreaTransport(exchange, "house"), "house")
    assert market.grid_fees(3)["command"] == "grid_fees" and market.last_market_dso_stats()["status"] == "ready"
    with pytest.raises(ValueError):
        market.grid_fees(-1)
    payloads = {command: payload for _, command, payload in exchange.received}
    assert payloads["set_energy_forecast"]["energy_forecast"] == {"2026-06-01T10:30": 0.4}
    assert payloads["grid_fees"]["fee_const"] == 3 and payloads["grid_fees"]["transaction_id"]
    assert "energy_measurement" in payloads["set_energy_measurement"]


def test_a_batch_of_bids_offers_and_deletes_is_answered_per_area() -> None:
    exchange = MemoryExchange(AREAS)
    aggregator = Recording(exchange)
    pv, load = selected_assets(exchange, aggregator)
    aggregator.add_to_batch_commands.offer_energy(pv.area_uuid, 1, 2).bid_energy(load.area_uuid, 0.5, 15).list_bids(
        load.area_uuid
    )
    assert aggregator.commands_buffer_length == 3
    response = aggregator.execute_batch_command()  # the README's spelling
    assert aggregator.commands_buffer_length == 0
    assert response["aggregator_uuid"] == aggregator.aggregator_uuid
    (offer,) = response["responses"]["uuid-pv"]
    bid, listing = response["responses"]["uuid-load"]
    assert (offer["command"], offer["status"], bid["command"], bid["status"]) == ("offer", "ready", "bid", "ready")
    bid_id = json.loads(bid["bid"])["id"]
    assert json.loads(bid["bid"])["energy_rate"] == 30 and listing["bid_list"] == [bid_id]

    aggregator.add_to_batch_commands.delete_bid(load.area_uuid, bid_id).list_bids(load.area_uuid)
    delete, listing = aggregator.execute_batch_commands()["responses"]["uuid-load"]
    assert (delete["command"], delete["deleted_bids"], listing["bid_list"]) == ("bid_delete", [bid_id], [])
    assert aggregator.execute_batch_commands() is None  # empty buffer: nothing sent

    aggregator.add_to_batch_commands.delete_offer(pv.area_uuid)
    assert aggregator.execute_batch_commands(is_blocking=False) is None
    _, command, batch = exchange.received[-1]
    assert command == "batch_commands" and batch == {
        "uuid-pv": [{"type": "delete_offer", "offer": None, "offer_id": None, "time_slot": None}]
    }
    assert aggregator.wait_for_hooks(5)
    assert [kind for name, kind in aggregator.calls if name == "any"] == ["batch_commands"] * 3


def test_a_batch_for_a_device_that_is_not_selected_raises_and_is_dropped() -> None:
    exchange = MemoryExchange(AREAS)
    aggregator = Recording(exchange)
    aggregator.add_to_batch_commands.bid_energy("uuid-load", 1, 1)
    with pytest.raises(Exception, match="uuid-load not in list of selected device uuids"):
        aggregator.execute_batch_commands()
    assert aggregator.commands_buffer_length == 0
    assert not [command for _, command, _ in exchange.received if command == "batch_commands"]


def test_events_reach_the_hooks_in_order_after_the_bookkeeping() -> None:
    exchange = MemoryExchange(AREAS)
    aggregator = Recording(exchange)
    tree = worked_example_tree()
    assert aggregator.calculate_grid_fee("PV 2.1") is None  # no tree yet
    events = [
        {"event": "market", "market_slot": "2026-06-01T10:00", "grid_tree": tree},
        {"event": "tick", "slot_completion": "0%", "grid_tree": tree},  # below 10 %: on_tick skips it
        {"event": "tick", "slot_completion": "20%", "grid_tree": tree},
        {"event": "trade", "trade_list": [{"trade_id": "t1", "seller": "PV 2.1", "buyer": "Load 3"}]},
        {"event": "finish"},
    ]
    for event in events:
        exchange.publish(event)
    assert aggregator.is_finished and aggregator.wait_for_hooks(5)
    assert aggregator.calls == [
        ("market", ("2026-06-01T10:00", "PV 2.1")),  # names were mapped before the hook ran
        ("any", "market"),
        ("any", "tick"),
        ("tick", "20%"),
        ("any", "tick"),
        ("trade", ["t1"]),
        ("any", "trade"),
        ("finish", True),
        ("finished", None),
        ("any", "finish"),
    ]
    assert aggregator.latest_grid_tree is tree and len(aggregator.latest_grid_tree_flat) == 15
    assert aggregator.area_name_uuid_mapping["House 2.1"] == ["House 2.1"]
    # SDK_API.md 8's worked example, by name.
    assert aggregator.calculate_grid_fee("PV 2.1") == pytest.approx(3.1)
    assert aggregator.calculate_grid_fee("PV 2.1", "Load 1.2") == pytest.approx(21.3)
    assert aggregator.calculate_grid_fee("PV 2.1", "Load 1.2", "last_market_fee") == pytest.approx(16.3)
    assert aggregator.calculate_grid_fee("Market Maker", "Load 3") == pytest.approx(15)
    assert aggregator.calculate_grid_fee("House 2.1", "Load 2.1") == pytest.approx(3.1)
    with pytest.raises(ValueError, match="Could not find Wind in tree"):
        aggregator.get_uuid_from_area_name("Wind")


def test_a_malformed_event_is_dropped_and_the_next_one_handled(caplog, monkeypatch) -> None:
    # A fresh rate limit: earlier tests may have used up this one's burst.
    monkeypatch.setattr(aggregator_core, "_dropped", RateLimitedLog(aggregator_core.logger))
    exchange = MemoryExchange(AREAS)
    aggregator = Recording(exchange)
    tree = worked_example_tree()
    exchange.publish({"event": "market", "market_slot": "2026-06-01T10:00", "grid_tree": tree})
    with caplog.at_level(logging.WARNING, logger="gsy_e_sdk.aggregator_core"):
        for garbage in (
            {"event": "market", "grid_tree": [1, 2]},
            {"event": "tick", "slot_completion": 40},
            {"event": ["finish"]},
            {"no_event": True},
        ):
            exchange.publish(garbage)
        aggregator.transport.deliver_batch_answer({"transaction_id": 5, "responses": []})
        exchange.publish({"event": "tick", "slot_completion": "30%", "grid_tree": tree})
    assert aggregator.wait_for_hooks(5)
    assert [call for call in aggregator.calls if call[0] != "any"] == [
        ("market", ("2026-06-01T10:00", "PV 2.1")),
        ("tick", "30%"),
    ]
    assert [kind for name, kind in aggregator.calls if name == "any"] == ["market", "tick"]
    assert aggregator.latest_grid_tree is tree and not aggregator.is_finished
    assert caplog.text.count("Dropped a malformed message") == 5


def test_a_batch_the_exchange_refuses_goes_back_into_the_buffer() -> None:
    exchange = MemoryExchange(AREAS)
    aggregator = Recording(exchange)
    pv, load = selected_assets(exchange, aggregator)
    exchange.take_batches = False
    aggregator.add_to_batch_commands.offer_energy(pv.area_uuid, 1, 2).bid_energy(load.area_uuid, 1, 30)
    assert aggregator.execute_batch_commands() is None
    assert aggregator.commands_buffer_length == 2  # kept for the next attempt
    aggregator.add_to_batch_commands.bid_energy(load.area_uuid, 2, 60)  # added meanwhile: goes after
    exchange.take_batches = True
    response = aggregator.execute_batch_commands()
    assert aggregator.commands_buffer_length == 0
    assert [answer["command"] for answer in response["responses"]["uuid-load"]] == ["bid", "bid"]
    _, _, batch = exchange.received[-1]
    assert [command["energy"] for command in batch["uuid-load"]] == [1, 2] and len(batch["uuid-pv"]) == 1


def test_an_unanswered_batch_times_out_and_finish_releases_a_blocked_one() -> None:
    exchange = MemoryExchange(AREAS)
    aggregator = Recording(exchange)
    pv, _ = selected_assets(exchange, aggregator)
    exchange.answer_batches = False
    aggregator.add_to_batch_commands.offer_energy(pv.area_uuid, 1, 2)
    with pytest.raises(LookupError, match=r"^Sending batch commands timed out\. \(command: batch_commands"):
        aggregator.execute_batch_commands()
    result: dict[str, Any] = {}
    aggregator.transport.timeout = 30
    aggregator.add_to_batch_commands.offer_energy(pv.area_uuid, 1, 2)
    caller = threading.Thread(target=lambda: result.update(answer=aggregator.execute_batch_commands()))
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    exchange.publish({"event": "finish"})
    caller.join(5)
    assert not caller.is_alive() and result == {"answer": None} and time.monotonic() - started < 2
    sent = len(exchange.received)
    aggregator.add_to_batch_commands.offer_energy(pv.area_uuid, 1, 2)
    assert aggregator.execute_batch_commands() is None  # after finish: not sent
    assert len(exchange.received) == sent and aggregator.commands_buffer_length == 0


def test_an_asset_in_direct_mode_gets_every_event_without_the_tick_filter() -> None:
    class Listening(AssetClient, EventHooks):
        drop_stale_ticks = False

        def __init__(self, exchange: MemoryExchange) -> None:
            self.seen: list[str] = []
            super().__init__(MemoryAreaTransport(exchange, "pv"), "pv")

        def on_market_slot(self, market_info: dict) -> None:
            self.seen.append("market")

        def on_tick(self, tick_info: dict) -> None:
            self.seen.append(f"tick {tick_info['slot_completion']}")

        def on_event_or_response(self, message: dict) -> None:
            self.seen.append(f"any {message['event']}")

    exchange = MemoryExchange(AREAS)
    pv = Listening(exchange)
    for event in ({"event": "market"}, {"event": "tick", "slot_completion": "0%"}, {"event": "finish"}):
        exchange.publish_to_area("pv", event)
    exchange.publish_to_area("pv", {"event": "tick", "slot_completion": 5})  # malformed: dropped
    assert pv.wait_for_hooks(5) and pv.is_finished
    assert pv.seen == ["market", "any market", "tick 0%", "any tick", "any finish"]
    pv.close()
    with pytest.raises(KeyError):
        exchange.publish_to_area("pv", {"event": "market"})
