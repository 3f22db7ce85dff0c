"""The protocol's models of command arguments (gsy_e_sdk/wire/command_params.py): wire shapes,
the fast spot order of the fleet, both spellings of a grid fee, and messages that never echo
the refused value unless asked to (the SDK asks, servers do not)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from pydantic import ValidationError

from gsy_e_sdk import validation
from gsy_e_sdk.wire import command_params as p


@pytest.mark.parametrize("model", [p.Offer, p.Bid])
def test_a_spot_order_is_the_validated_order_without_the_validation(model):
    fast, checked = model.spot(0.25, 7.5), model(energy=0.25, price=7.5)
    assert fast == checked and fast.model_fields_set == checked.model_fields_set
    assert (
        fast.wire()
        == checked.wire()
        == {
            "type": model.command,
            "energy": 0.25,
            "price": 7.5,
            "replace_existing": True,
            "time_slot": None,  # the spot market (REDIS.md 11.1)
        }
    )
    assert model.model_validate(fast.model_dump()) == fast


def test_values_travel_as_given_and_optional_order_keys_only_when_set():
    order = p.Bid(energy=1, price=3, attributes={"energy_type": "PV"}, time_slot=datetime(2021, 7, 1, 12, 15))
    assert order.wire() == {
        "type": "bid",
        "energy": 1,
        "price": 3,
        "replace_existing": True,
        "time_slot": "2021-07-01T12:15",
        "attributes": {"energy_type": "PV"},
    }
    assert isinstance(order.wire()["price"], int)  # not turned into 3.0
    assert p.DeviceInfo().wire() == {"type": "device_info"}
    assert p.DsoMarketStats().wire() == {"type": "dso_market_stats", "data": {}}


def test_a_grid_fee_is_read_in_data_or_beside_it_and_sent_in_data():
    in_data = p.GridFees.model_validate({"data": {"fee_const": 5}})
    assert in_data == p.GridFees.model_validate({"fee_const": 5})
    assert in_data.wire() == {"type": "grid_fees", "data": {"fee_const": 5}}
    assert p.GridFees(fee_percent=10).wire() == {"type": "grid_fees", "data": {"fee_percent": 10}}
    for bad, reason in [
        ({}, "exactly one"),
        ({"fee_const": 1, "fee_percent": 1}, "exactly one"),
        ({"data": {"fee_const": 1}, "fee_const": 2}, "not both"),
        ({"data": [1]}, "data must be a dict"),
        ({"fee_const": p.MAX_CONSTANT_FEE + 1}, f"fee_const must be <= {p.MAX_CONSTANT_FEE}"),
        ({"data": {"fee_percent": 101}}, "fee_percent must be <= 100"),
    ]:
        with pytest.raises(ValidationError) as refused:
            p.GridFees.model_validate(bad)
        assert reason in p.describe(refused.value)


def test_a_delete_reads_the_id_gsy_e_reads_first():
    assert p.DeleteOffer(offer="a", offer_id="b").order_id == "a"
    assert p.DeleteOffer(offer_id="b").order_id == "b"
    assert p.DeleteBid().order_id is None and p.DeleteBid(bid_id="x").wire()["bid"] is None


def test_energy_series_format_datetime_keys_and_refuse_what_the_exchange_cannot_parse():
    series = p.SetEnergyForecast(energy_forecast={datetime(2021, 7, 1, 12, 30): 1, "2021-07-01T12:45": 0.5})
    assert series.energy_forecast == {"2021-07-01T12:30": 1, "2021-07-01T12:45": 0.5}
    for bad in ({None: 1}, {"soon": 1}, {"2021-07-01T12:30": -1}, {"2021-07-01T12:30": math.inf}, {}):
        with pytest.raises(ValidationError, match="energy_forecast"):
            p.SetEnergyForecast(energy_forecast=bad)


def test_messages_name_the_rule_and_echo_the_value_only_when_asked():
    with pytest.raises(ValidationError) as refused:
        p.Offer.model_validate({"energy": -2, "price": "1", "colour": "red"})
    assert p.describe(refused.value) == (
        "energy must be > 0 kWh; price must be a number; colour is not an argument of this command"
    )
    assert p.describe(refused.value, {"energy": "energy_kWh"}, echo=True).startswith(
        "energy_kWh must be > 0 kWh, got -2;"
    )
    with pytest.raises(ValidationError) as refused:
        p.Offer.model_validate({"energy": 1e-300, "price": 1e300})
    assert p.describe(refused.value) == "price / energy must be a finite energy rate"
    with pytest.raises(ValueError, match=r"^fee must be >= 0, got -1$"):
        validation.non_negative(-1, "fee")
    with pytest.raises(ValueError, match=r"^energy must be finite, got 1000"):
        validation.positive_energy(10**400)
