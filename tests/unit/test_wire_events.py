"""Events typed once (gsy_e_sdk/wire/events.py): the reference's captures parse, encoding
round-trips, the exchange writes exactly what it wrote before, and malformed events are refused."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.events import (
    DeviceFinishEvent,
    DeviceMarketEvent,
    DeviceTickEvent,
    DeviceTradeEvent,
    EventError,
    FinishEvent,
    MarketEvent,
    TickEvent,
    TradeEvent,
    WireMessage,
    encode_event,
    parse_event,
)
from gsy_e_sdk.wire.incoming import AggregatorEvent
from gsy_e_sdk.wire.times import format_completion, format_slot, format_trade_time
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.scenario import load_scenario
from gsy_local_exchange.simulation import Simulation

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "tests" / "fixtures" / "captures"
SCENARIO = load_scenario(ROOT / "gsy_local_exchange" / "scenarios" / "external_devices.json")
AGGREGATOR = "0b8f7c2e-0000-4000-8000-000000000001"
MODELS = {"market": MarketEvent, "tick": TickEvent, "trade": TradeEvent, "finish": FinishEvent}


def _captured_events() -> list[dict[str, Any]]:
    events = []
    for path in sorted(CAPTURES.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "/events/" in record["channel"]:
                events.append(record["data"])
    examples = json.loads((CAPTURES / "examples_one_per_kind.json").read_text())
    events.extend(example["payload"] for example in examples.values() if "/events/" in example["channel"])
    return events


CAPTURED = _captured_events()


def test_every_captured_event_parses_into_its_model() -> None:
    assert {event["event"] for event in CAPTURED} == set(MODELS)
    assert len(CAPTURED) > 50
    for raw in CAPTURED:
        event = parse_event(raw)
        assert type(event) is MODELS[raw["event"]]
        assert event.model_dump() == raw  # nothing lost, not even the grid tree
        if "grid_tree" in raw:  # never walked nor copied: megabytes at 1,000 assets
            assert event.grid_tree is raw["grid_tree"]
    trade = next(parse_event(raw) for raw in CAPTURED if raw["event"] == "trade")
    assert isinstance(trade, TradeEvent) and trade.trade_list[0].traded_energy > 0


@pytest.mark.parametrize("raw", CAPTURED[:40] + [raw for raw in CAPTURED if raw["event"] in ("trade", "finish")])
def test_encoding_round_trips_with_the_reference_key_order(raw: dict[str, Any]) -> None:
    event = parse_event(raw)
    text = encode_event(event)
    assert parse_event(json.loads(text)) == event
    assert list(json.loads(text)) == list(raw)  # gsy-e's order
    tree = raw.get("grid_tree")
    if tree is not None:  # an already encoded tree is written as it is
        assert json.loads(encode_event(event, json.dumps(tree))) == raw


def test_unknown_keys_pass_and_are_written_back() -> None:
    raw = {"event": "finish", "simulation_id": "sim", "num_ticks": 10.0, "added_later": [1, {"a": None}]}
    event = parse_event(raw)
    assert event.model_extra == {"added_later": [1, {"a": None}]}
    assert json.loads(encode_event(event)) == raw


GOOD_TICK = CAPTURED[0] if CAPTURED[0]["event"] == "tick" else next(raw for raw in CAPTURED if raw["event"] == "tick")
HUGE = "x" * 10_000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([GOOD_TICK], "an event is a JSON object, not list"),
        ({"event": "selected_by_device"}, "unknown event 'selected_by_device'"),
        ({"event": HUGE}, "unknown event 'xxxx"),
        ({"no": "event"}, "unknown event None"),
        ({**GOOD_TICK, "slot_completion": 40}, "slot_completion: Input should be a valid string"),
        ({**GOOD_TICK, "slot_completion": "forty"}, "slot_completion: String should match pattern"),
        ({**GOOD_TICK, "market_slot": HUGE}, "market_slot: String should match pattern"),
        ({**GOOD_TICK, "grid_tree": [1, 2]}, "grid_tree: Value error, must be an object of area uuids"),
        ({**GOOD_TICK, "grid_tree": {"root": 5}}, "grid_tree: Value error, must be an object of area uuids"),
        ({**GOOD_TICK, "market_maker_rate": True}, "market_maker_rate: Value error, must be a finite number"),
        ({**GOOD_TICK, "num_ticks": float("nan")}, "num_ticks: Value error, must be a finite number"),
        ({key: value for key, value in GOOD_TICK.items() if key != "grid_tree"}, "grid_tree: Field required"),
        ({"event": "trade", "trade_list": {"a": 1}}, "trade_list: Input should be a valid list"),
        ({"event": "finish", "simulation_id": None}, "num_ticks: Field required"),
    ],
)
def test_malformed_events_are_refused_with_a_one_line_reason(raw: Any, reason: str) -> None:
    with pytest.raises(EventError) as refused:
        parse_event(raw)
    message = str(refused.value)
    assert reason in message
    assert "\n" not in message and len(message) < 500  # the input is never echoed


def test_a_bad_trade_entry_is_named_by_its_position() -> None:
    trade = next(raw for raw in CAPTURED if raw["event"] == "trade")
    entry = {**trade["trade_list"][0], "traded_energy": "0.1"}
    with pytest.raises(EventError, match=r"^malformed trade event: trade_list\.0\.traded_energy: "):
        parse_event({**trade, "trade_list": [entry]})


def test_the_sdk_check_stays_lenient_where_clients_need_it() -> None:
    # Device sockets and the websocket's selection events carry partial events; the SDK passes them on.
    for partial in ({"event": "finish"}, {"event": "market", "market_slot": "x"}, {"event": "selected_by_device"}):
        AggregatorEvent.model_validate(partial)
        with pytest.raises(EventError):
            parse_event(partial)


# ---------------------------------------------------------------------------------------------
# What the exchange wrote before the models: its f-strings and dicts, verbatim, as the oracle.


def _legacy_trade_entry(simulation: Simulation, trade, asset, is_seller: bool) -> dict:
    settlement = trade.settlement
    energy = trade.energy
    if is_seller:
        own_fee = trade.seller_fee
        price = (settlement.seller_revenue_rate + own_fee) * energy
    else:
        own_fee = trade.buyer_fee
        price = settlement.buyer_rate * energy
    return {
        "event": "trade",
        "asset_id": asset.uuid,
        "trade_id": trade.trade_id,
        "time": format_trade_time(trade.time),
        "trade_price": round(price, 8),
        "traded_energy": energy,
        "total_fee": round(own_fee * energy, 8),
        "local_market_fee": float(asset.market.fee_last) if simulation.engine.slot_index > 0 else "None",
        "seller": asset.name if is_seller else "anonymous",
        "buyer": "anonymous" if is_seller else asset.name,
        "seller_origin": trade.seller.name,
        "buyer_origin": trade.buyer.name,
        "bid_id": trade.bid_id,
        "offer_id": trade.offer_id,
        "residual_bid_id": trade.residual_bid_id or "None",
        "residual_offer_id": trade.residual_offer_id or "None",
    }


def _legacy_aggregator_event(simulation: Simulation, tick: int, kind: str, trades: list) -> str:
    engine, clock = simulation.engine, simulation.clock
    tree = simulation.events.tree.tree_json(simulation.registry.aggregators[AGGREGATOR].devices)
    num_ticks = clock.num_ticks_field
    common_tail = (
        f'"feed_in_tariff_rate": {json.dumps(engine.feed_in_tariff_rate)}, '
        f'"market_maker_rate": {json.dumps(engine.market_maker_rate)}, '
    )
    if kind == "finish":
        return json.dumps({"event": "finish", "simulation_id": None, "num_ticks": num_ticks})
    if kind == "trade":
        trade_list = [
            _legacy_trade_entry(simulation, trade, asset, is_seller)
            for trade in trades
            for asset, is_seller in ((trade.seller, True), (trade.buyer, False))
            if simulation.registry.owner.get(asset.uuid) == AGGREGATOR
        ]
        return (
            f'{{"trade_list": {json.dumps(trade_list)}, "grid_tree": {tree}, {common_tail}'
            f'"event": "trade", "simulation_id": null, "num_ticks": {num_ticks}}}'
        )
    completion = format_completion(clock.completion_percent(tick))
    return (
        f'{{"slot_completion": "{completion}", "market_slot": "{format_slot(engine.slot_start)}", '
        f'"grid_tree": {tree}, {common_tail}"event": "{kind}", "simulation_id": null, '
        f'"num_ticks": {num_ticks}}}'
    )


def _legacy_direct_event(simulation: Simulation, tick: int, kind: str, asset, trades: list) -> list[dict]:
    engine, clock = simulation.engine, simulation.clock
    slot = format_slot(engine.slot_start)
    if kind == "market":
        return [
            {
                "name": asset.market.name,
                "id": asset.market.uuid,
                "start_time": slot,
                "duration_min": int(clock.slot_length.total_seconds() // 60),
                "time_slots": [slot],
                "type_name": "Spot Market",
                "device_info": asset.info(),
                "event": "market",
                "area_uuid": asset.uuid,
                "device_bill": asset.bill_info(),
                "last_market_maker_rate": engine.market_maker_rate,
                "last_market_stats": asset.market.last_stats.summary() if asset.market.last_stats else {},
            }
        ]
    if kind == "tick":
        return [
            {
                "slot_completion": format_completion(clock.completion_percent(tick)),
                "market_slot": slot,
                "event": "tick",
                "area_uuid": asset.uuid,
                "device_info": asset.info(),
            }
        ]
    if kind == "finish":
        return [{"event": "finish", "area_uuid": asset.uuid}]
    entries = []
    for trade in trades:
        for side_asset, side in ((trade.seller, "sell"), (trade.buyer, "buy")):
            if side_asset is not asset:
                continue
            selling = side == "sell"
            fee = trade.seller_fee if selling else trade.buyer_fee
            rate = trade.settlement.seller_revenue_rate + fee if selling else trade.settlement.buyer_rate
            residual = trade.residual_offer_id if selling else trade.residual_bid_id
            entries.append(
                {
                    "device_info": asset.info(),
                    "event": "trade",
                    "trade_id": trade.trade_id,
                    "time": format_trade_time(trade.time),
                    "trade_price": round(rate * trade.energy, 8),
                    "traded_energy": trade.energy,
                    "fee_price": round(fee * trade.energy, 8),
                    "area_uuid": asset.uuid,
                    "seller": trade.seller.name if selling else "anonymous",
                    "buyer": trade.buyer.name if not selling else "anonymous",
                    "residual_id": residual or "None",
                    "event_type": side,
                    ("offer_id" if selling else "bid_id"): trade.offer_id if selling else trade.bid_id,
                }
            )
    return entries


def test_the_exchange_writes_what_its_old_f_strings_wrote() -> None:
    clock = SimulationClock(
        datetime(2026, 6, 1, 11, 45), SCENARIO.settings.slot_length, SCENARIO.settings.tick_length, timedelta(hours=1)
    )
    simulation = Simulation(SCENARIO, clock)
    areas = {area.name: area for area in simulation.engine.areas.values()}
    simulation.handle(channels.AGGREGATOR_COMMANDS, {"type": "CREATE", "name": "a", "transaction_id": AGGREGATOR})
    for name in ("load", "House 2"):
        select = {"type": "SELECT", "aggregator_uuid": AGGREGATOR, "device_uuid": areas[name].uuid}
        simulation.handle(channels.AGGREGATOR_COMMANDS, {**select, "transaction_id": name})
    simulation.handle(channels.register("pv"), {"transaction_id": "direct"})  # pv trades in direct mode
    events = channels.aggregator_events(AGGREGATOR)
    seen: set[str] = set()
    while not simulation.finished:
        tick = simulation.tick
        if tick % 3 == 1:
            bid = {"type": "bid", "energy": 0.01, "price": 0.4, "replace_existing": True}
            batch = {"transaction_id": f"b{tick}", "aggregator_uuid": AGGREGATOR}
            simulation.handle(channels.batch_commands(), {**batch, "batch_commands": {areas["load"].uuid: [bid]}})
            simulation.handle(channels.area_command("pv", "offer"), {"energy": 0.01, "price": 0.1})
        result = simulation.step()
        for channel, text in result.messages:
            if channel == events:
                kind = json.loads(text)["event"]
                assert text == _legacy_aggregator_event(simulation, tick, kind, result.trades)
                seen.add(kind)
            elif channel.startswith("pv/events/"):
                kind = channel.rpartition("/")[2]
                expected = _legacy_direct_event(simulation, tick, kind, areas["pv"], result.trades)
                assert json.loads(text) in expected and list(json.loads(text)) == list(expected[0])
                seen.add(f"direct {kind}")
    assert seen == {*MODELS, *(f"direct {kind}" for kind in MODELS)}


@pytest.mark.parametrize(
    "event",
    [
        DeviceMarketEvent(
            name="House 2",
            id="m",
            start_time="2026-06-01T12:00",
            duration_min=15,
            time_slots=["2026-06-01T12:00"],
            type_name="Spot Market",
            device_info={"available_energy_kWh": 0.5},
            area_uuid="pv",
            device_bill={},
            last_market_maker_rate=30,
            last_market_stats={},
        ),
        DeviceTickEvent(slot_completion="40%", market_slot="2026-06-01T12:00", area_uuid="pv", device_info={}),
        DeviceTradeEvent(
            device_info={},
            trade_id="t",
            time="2026-06-01T12:01:00+00:00",
            trade_price=1.5,
            traded_energy=0.1,
            fee_price=0.0,
            area_uuid="pv",
            seller="pv",
            buyer="anonymous",
            residual_id="None",
            event_type="sell",
            offer_id="o",
        ),
        DeviceFinishEvent(),
        DeviceFinishEvent(area_uuid="pv"),
    ],
)
def test_direct_mode_events_round_trip_and_leave_out_what_they_do_not_name(event: WireMessage) -> None:
    decoded = json.loads(encode_event(event))
    assert type(event).model_validate(decoded) == event
    assert None not in decoded.values()  # no "bid_id": null for an offer's trade, no area_uuid for a market
