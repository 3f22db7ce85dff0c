"""The batch command builder (SDK_API.md 6, REDIS.md 6.2) checked against captured traffic."""

import json
import math
import time

import pytest

from gsy_e_sdk.commands import ClientCommandBuffer
from gsy_e_sdk.enums import Commands, command_enum_to_command_name
from tests.fixtures import CAPTURES

PV, LOAD, MARKET = "pv-uuid", "load-uuid", "market-uuid"


def captured_batches() -> list[dict]:
    batches = []
    for name in (
        "external_devices__test_redis_aggregator.jsonl",
        "default_community__basic_strategies_and_grid_fees.jsonl",
    ):
        for line in (CAPTURES / name).read_text().splitlines():
            record = json.loads(line)
            if record["channel"] == "external-aggregator//batch_commands":
                batches.append(record["data"])
    return batches


def rebuild(uuid: str, command: dict, buffer: ClientCommandBuffer) -> None:
    kind = command["type"]
    if kind in ("offer", "bid"):
        method = buffer.offer_energy if kind == "offer" else buffer.bid_energy
        method(uuid, command["energy"], command["price"], command["replace_existing"], command["time_slot"])
    elif kind == "dso_market_stats":
        buffer.last_market_dso_stats(uuid)
    elif kind == "grid_fees":
        buffer.grid_fees(uuid, command["data"]["fee_const"])
    else:
        raise AssertionError(f"capture holds an unexpected command {command}")


def test_rebuilding_every_captured_batch_gives_identical_commands():
    batches = captured_batches()
    assert len(batches) >= 5
    for batch in batches:
        buffer = ClientCommandBuffer()
        for uuid, commands in batch["batch_commands"].items():
            for command in commands:
                rebuild(uuid, command, buffer)
        assert buffer.execute_batch() == batch["batch_commands"]


def test_every_builder_method_chains_and_emits_the_documented_object():
    buffer = ClientCommandBuffer()
    result = (
        buffer.offer_energy(PV, 1.2, 18.0)
        .offer_energy_rate(PV, 2.0, 5.0, replace_existing=False, time_slot="2021-07-01T12:15")
        .bid_energy(LOAD, 0.05, 1.25, False, "2021-07-01T12:15")
        .bid_energy_rate(LOAD, 0.5, 30.0)
        .delete_offer(PV, "offer-1")
        .delete_bid(LOAD)
        .list_offers(PV)
        .list_bids(LOAD, time_slot="2021-07-01T12:15")
        .asset_info(PV)
        .device_info(LOAD)
        .last_market_dso_stats(MARKET)
        .grid_fees(MARKET, 3.5)
        .change_grid_fees_percent(MARKET, 10)
        .set_energy_forecast(PV, {"2021-07-01T12:30": 0.86})
        .set_energy_measurement(PV, {"2021-07-01T12:00": 0.87})
    )
    assert result is buffer
    assert buffer.buffer_length == 15
    assert buffer.execute_batch() == {
        PV: [
            {"type": "offer", "energy": 1.2, "price": 18.0, "replace_existing": True, "time_slot": None},
            {"type": "offer", "energy": 2.0, "price": 10.0, "replace_existing": False, "time_slot": "2021-07-01T12:15"},
            {"type": "delete_offer", "offer": "offer-1", "offer_id": "offer-1", "time_slot": None},
            {"type": "list_offers", "time_slot": None},
            {"type": "device_info"},
            {"type": "set_energy_forecast", "energy_forecast": {"2021-07-01T12:30": 0.86}},
            {"type": "set_energy_measurement", "energy_measurement": {"2021-07-01T12:00": 0.87}},
        ],
        LOAD: [
            {"type": "bid", "energy": 0.05, "price": 1.25, "replace_existing": False, "time_slot": "2021-07-01T12:15"},
            {"type": "bid", "energy": 0.5, "price": 15.0, "replace_existing": True, "time_slot": None},
            {"type": "delete_bid", "bid": None, "bid_id": None, "time_slot": None},
            {"type": "list_bids", "time_slot": "2021-07-01T12:15"},
            {"type": "device_info"},
        ],
        MARKET: [
            {"type": "dso_market_stats", "data": {}},
            {"type": "grid_fees", "data": {"fee_const": 3.5}},
            {"type": "grid_fees", "data": {"fee_percent": 10}},
        ],
    }
    # execute_batch keeps the buffer; take_batch empties it.
    assert buffer.buffer_length == 15
    assert len(buffer.take_batch()) == 3 and buffer.buffer_length == 0


def test_attributes_and_requirements_are_sent_only_when_given():
    buffer = ClientCommandBuffer()
    buffer.bid_energy(LOAD, 1, 10)
    buffer.bid_energy(LOAD, 1, 10, attributes={"energy_type": "PV"}, requirements=[{"trading_partners": ["pv-uuid"]}])
    buffer.offer_energy_rate(PV, 1, 10, requirements=[{"energy": 0.5}])
    plain, with_both = buffer.execute_batch()[LOAD]
    assert "attributes" not in plain and "requirements" not in plain
    assert with_both["attributes"] == {"energy_type": "PV"}
    assert with_both["requirements"] == [{"trading_partners": ["pv-uuid"]}]
    offer = buffer.execute_batch()[PV][0]
    assert offer["requirements"] == [{"energy": 0.5}] and "attributes" not in offer


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda b: b.offer_energy(PV, 0, 1), "energy must be > 0"),
        (lambda b: b.offer_energy(PV, -1, 1), "energy must be > 0"),
        (lambda b: b.bid_energy(LOAD, math.nan, 1), "energy must be finite"),
        (lambda b: b.bid_energy(LOAD, "1", 1), "energy must be a number"),
        (lambda b: b.bid_energy(LOAD, True, 1), "energy must be a number"),
        (lambda b: b.bid_energy(LOAD, 1, -0.01), "price must be >= 0"),
        (lambda b: b.bid_energy(LOAD, 1, math.inf), "price must be finite"),
        (lambda b: b.offer_energy_rate(PV, 1, -3), "rate must be >= 0"),
        (lambda b: b.offer_energy(None, 1, 1), "area uuid must be a non-empty string"),
        (lambda b: b.offer_energy("", 1, 1), "area uuid must be a non-empty string"),
        (lambda b: b.asset_info(42), "area uuid must be a non-empty string"),
        (lambda b: b.offer_energy(PV, 1, 1, replace_existing="yes"), "replace_existing must be"),
        (lambda b: b.offer_energy(PV, 1, 1, time_slot="tomorrow"), "unparsable time slot"),
        (lambda b: b.delete_offer(PV, ""), "offer_id must be a non-empty string"),
        (lambda b: b.grid_fees(MARKET, -1), "fee_cents_kwh must be >= 0"),
        (lambda b: b.change_grid_fees_percent(MARKET, math.nan), "fee_percent must be finite"),
        (lambda b: b.set_energy_forecast(PV, {"2021-07-01T12:30": -1}), "must be >= 0"),
        (lambda b: b.set_energy_forecast(PV, {}), "non-empty dict"),
        (lambda b: b.set_energy_measurement(PV, {"soon": 1}), "unparsable time slot"),
        (lambda b: b.bid_energy(LOAD, 1, 1, attributes=["x"]), "attributes must be a dict"),
    ],
)
def test_invalid_input_is_rejected_before_anything_is_buffered(call, message):
    buffer = ClientCommandBuffer()
    with pytest.raises(ValueError, match=message):
        call(buffer)
    assert buffer.buffer_length == 0


def test_deprecated_update_commands_add_nothing_and_break_the_chain(caplog):
    buffer = ClientCommandBuffer()
    assert buffer.update_offer(PV, 1, 2) is None
    assert buffer.update_bid(LOAD, 1, 2) is None
    assert buffer.buffer_length == 0
    assert "update_offer is deprecated" in caplog.text


def test_grouping_keeps_order_per_uuid():
    buffer = ClientCommandBuffer()
    for index in range(6):
        buffer.bid_energy(f"asset-{index % 2}", index + 1, 1)
    batch = buffer.execute_batch()
    assert [c["energy"] for c in batch["asset-0"]] == [1, 3, 5]
    assert [c["energy"] for c in batch["asset-1"]] == [2, 4, 6]


def test_building_and_grouping_ten_thousand_commands_is_linear_and_fast():
    buffer = ClientCommandBuffer()
    started = time.perf_counter()
    for index in range(10_000):
        buffer.bid_energy(f"asset-{index % 500}", 0.1, 3)
    batch = buffer.take_batch()
    json.dumps(batch)
    elapsed = time.perf_counter() - started
    assert sum(map(len, batch.values())) == 10_000
    assert elapsed < 0.5, f"10,000 commands took {elapsed:.2f} s"


def test_command_enum_wire_names():
    assert [command_enum_to_command_name(c) for c in Commands] == [
        "offer",
        "bid",
        "delete_offer",
        "delete_bid",
        "list_offers",
        "list_bids",
        "device_info",
        "grid_fees",
        "dso_market_stats",
        "set_energy_forecast",
        "set_energy_measurement",
    ]
    assert Commands.ASSET_INFO.value == 7
