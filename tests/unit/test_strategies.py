"""Strategies of workers/strategies: arithmetic, energy limits, params validation, typed states and
commands, purity, registry."""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gsy_e_sdk.commands import ClientCommandBuffer
from workers.commands import wire_command
from workers.strategies import STRATEGIES, get_strategy
from workers.strategies.base import (
    AssetView,
    Decision,
    MarketNodeView,
    MarketView,
    NoState,
    PlaceOrder,
    RequestMarketStats,
    SetGridFee,
    WithdrawOrders,
)
from workers.strategies.grid_fee import GridFeeParams, decide_market
from workers.strategies.ramp import PriceRampParams, ramp_rate
from workers.strategies.storage import StorageArbitrageParams, StorageState
from workers.strategies.storage import decide as storage_decide
from workers.strategies.time_of_use import TimeOfUseParams
from workers.strategies.time_of_use import decide as tou_decide

SLOT = "2024-06-01T12:00"
NO_STATE = NoState()
ramp_decide = get_strategy("price_ramp").decide


def pv(energy: float = 1.2) -> AssetView:
    return AssetView(
        "pv-uuid",
        "PV 1",
        "PV",
        {"available_energy_kWh": energy, "energy_active_in_offers": 0.0, "energy_traded": 0.0, "total_cost": 0.0},
    )


def load(energy: float = 0.5) -> AssetView:
    return AssetView(
        "load-uuid",
        "Load 1",
        "Load",
        {"energy_requirement_kWh": energy, "energy_active_in_bids": 0.0, "energy_traded": 0.0, "total_cost": 0.0},
    )


def meter(required: float = 0.3, available: float = 0.2) -> AssetView:
    return AssetView(
        "sm-uuid", "SM 1", "SmartMeter", {"energy_requirement_kWh": required, "available_energy_kWh": available}
    )


def battery(
    to_sell: float = 0.4,
    to_buy: float = 0.6,
    used: float = 0.5,
    in_offers: float = 0.0,
    in_bids: float = 0.0,
    traded: float = 0.0,
) -> AssetView:
    return AssetView(
        "ess-uuid",
        "ESS 1",
        "Storage",
        {
            "energy_to_sell": to_sell,
            "energy_active_in_bids": in_bids,
            "energy_to_buy": to_buy,
            "energy_active_in_offers": in_offers,
            "free_storage": 1.0 - used,
            "used_storage": used,
            "energy_traded": traded,
            "total_cost": 0.0,
        },
    )


def market(
    completion: int = 0,
    mmr: float | None = 30.0,
    fit: float | None = None,
    fee: float | None = 0.0,
    event: str = "tick",
    slot: str = SLOT,
) -> MarketView:
    return MarketView(event, slot, completion, mmr, fit, fee)


def wire(decision: Decision) -> list[dict]:
    return [wire_command(command) for command in decision.commands]


def orders(decision: Decision) -> dict[str, dict]:
    by_type = {command["type"]: command for command in wire(decision)}
    assert len(by_type) == len(decision.commands), "one command per type expected"
    return by_type


def rate(command: dict) -> float:
    return command["price"] / command["energy"]


# ---------------------------------------------------------------- ramp helper and price_ramp


@pytest.mark.parametrize(("completion", "expected"), [(0, 30.0), (50, 30 - 20 * 5 / 9), (90, 10.0), (100, 10.0)])
def test_ramp_rate_is_linear_in_completion_and_ends_at_90_percent(completion, expected):
    assert ramp_rate(30.0, 10.0, completion) == pytest.approx(expected)


@pytest.mark.parametrize(("completion", "expected_rate"), [(0, 30.0), (50, 30 * 4 / 9), (90, 0.0)])
def test_price_ramp_pv_offers_everything_on_the_falling_ramp(completion, expected_rate):
    decision = ramp_decide(pv(1.2), market(completion), PriceRampParams(), NO_STATE)
    offer = orders(decision)["offer"]
    assert offer == {
        "type": "offer",
        "energy": 1.2,
        "price": pytest.approx(expected_rate * 1.2, abs=1e-8),
        "replace_existing": True,
        "time_slot": None,
    }
    assert "bid" not in orders(decision)


@pytest.mark.parametrize(("completion", "expected_rate"), [(0, 5.0), (50, 5 + 30 * 5 / 9), (90, 35.0)])
def test_price_ramp_load_bids_everything_on_the_rising_ramp(completion, expected_rate):
    params = PriceRampParams(initial_buying_rate=5, final_buying_rate=35)
    bid = orders(ramp_decide(load(0.5), market(completion), params, NO_STATE))["bid"]
    assert bid["energy"] == 0.5
    assert bid["price"] == pytest.approx(expected_rate * 0.5, abs=1e-8)
    assert bid["replace_existing"] is True


def test_price_ramp_defaults_follow_market_maker_rate_fees_and_feed_in_tariff():
    view = market(0, mmr=20.0, fit=4.0, fee=3.0)
    assert rate(orders(ramp_decide(pv(1.0), view, PriceRampParams(), NO_STATE))["offer"]) == pytest.approx(23.0)
    end = market(90, mmr=20.0, fit=4.0, fee=3.0)
    assert rate(orders(ramp_decide(pv(1.0), end, PriceRampParams(), NO_STATE))["offer"]) == pytest.approx(4.0)
    assert rate(orders(ramp_decide(load(1.0), end, PriceRampParams(), NO_STATE))["bid"]) == pytest.approx(23.0)


def test_price_ramp_falls_back_to_30_and_35_without_a_market_maker_rate():
    start, end = market(0, mmr=None), market(90, mmr=None)
    assert rate(orders(ramp_decide(pv(1.0), start, PriceRampParams(), NO_STATE))["offer"]) == pytest.approx(30.0)
    assert rate(orders(ramp_decide(load(1.0), end, PriceRampParams(), NO_STATE))["bid"]) == pytest.approx(35.0)


def test_price_ramp_bids_up_to_the_fallback_while_a_fee_on_the_way_is_unknown():
    # First slot: markets report no fee yet; the market maker rate alone would cap bids below
    # what the root's energy costs after fees, and nothing would trade.
    end = market(90, mmr=22.0, fee=None)
    assert rate(orders(ramp_decide(load(1.0), end, PriceRampParams(), NO_STATE))["bid"]) == pytest.approx(35.0)
    assert rate(orders(ramp_decide(pv(1.0), market(0, mmr=22.0, fee=None), PriceRampParams(), NO_STATE))["offer"]) == (
        pytest.approx(30.0)
    )


def test_price_ramp_configured_rate_wins_over_a_market_default_that_would_invert_the_ramp():
    # final_selling_rate 25 above the market-derived start (mmr 20): never offer below 25.
    offer = orders(ramp_decide(pv(1.0), market(50, mmr=20.0), PriceRampParams(final_selling_rate=25), NO_STATE))[
        "offer"
    ]
    assert rate(offer) == pytest.approx(25.0)
    # initial_buying_rate 40 above the market-derived end: keep bidding 40, not less.
    bid = orders(ramp_decide(load(1.0), market(90, mmr=20.0), PriceRampParams(initial_buying_rate=40), NO_STATE))["bid"]
    assert rate(bid) == pytest.approx(40.0)


def test_price_ramp_smart_meter_bids_and_offers_and_storage_uses_its_sell_and_buy_energy():
    decided = orders(ramp_decide(meter(0.3, 0.2), market(0), PriceRampParams(), NO_STATE))
    assert (decided["bid"]["energy"], decided["offer"]["energy"]) == (0.3, 0.2)
    assert decided["bid"]["price"] == 0.0 and decided["offer"]["price"] == pytest.approx(6.0)
    ess = orders(
        ramp_decide(
            battery(to_sell=0.1, in_offers=0.3, to_buy=0.2, in_bids=0.05), market(0), PriceRampParams(), NO_STATE
        )
    )
    # Storage reports energy net of its open orders; a replacing order may re-use them.
    assert ess["offer"]["energy"] == pytest.approx(0.4)
    assert ess["bid"]["energy"] == pytest.approx(0.25)


@pytest.mark.parametrize("asset", [pv(0.0), load(0.0), meter(0.0, 0.0), battery(0.0, 0.0), pv(0.00001)])
def test_no_order_for_zero_or_dust_energy(asset):
    for name in ("price_ramp", "time_of_use", "storage_arbitrage"):
        params = {"time_of_use": {"table": [{"time": "00:00", "buy_rate": 10, "sell_rate": 5}]}}.get(name, {})
        spec = get_strategy(name)
        assert spec.decide(asset, market(50), spec.params_model(**params), spec.fresh_state).commands == []


def test_min_energy_param_suppresses_small_orders():
    assert ramp_decide(pv(0.01), market(0), PriceRampParams(min_energy=0.05), NO_STATE).commands == []
    assert len(ramp_decide(pv(0.06), market(0), PriceRampParams(min_energy=0.05), NO_STATE).commands) == 1


def test_unknown_asset_kind_gets_no_commands():
    odd = AssetView("x", "Bus", "InfiniteBus", {"available_energy_kWh": 5.0, "energy_requirement_kWh": 5.0})
    assert ramp_decide(odd, market(0), PriceRampParams(), NO_STATE).commands == []
    assert storage_decide(pv(1.0), market(0), StorageArbitrageParams(), StorageState()).commands == []


def test_prices_are_never_negative_or_nan_even_with_odd_market_rates():
    decision = ramp_decide(pv(1.0), market(0, mmr=-5.0), PriceRampParams(), NO_STATE)
    assert wire(decision)[0]["price"] == 0.0
    assert decision.state is NO_STATE
    assert ramp_decide(pv(1.0), market(0, mmr=math.nan), PriceRampParams(), NO_STATE).commands == []
    assert ramp_decide(pv(math.nan), market(0), PriceRampParams(), NO_STATE).commands == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"initial_selling_rate": 10, "final_selling_rate": 20},
            "initial_selling_rate (10.0) must be >= final_selling_rate",
        ),
        (
            {"initial_buying_rate": 30, "final_buying_rate": 20},
            "initial_buying_rate (30.0) must be <= final_buying_rate",
        ),
        ({"final_buying_rate": -1}, "greater than or equal to 0"),
        ({"min_energy": 0}, "min_energy"),
        ({"initial_selling_rate": "inf"}, "finite"),
        ({"initial_sell_rate": 30}, "Extra inputs are not permitted"),
    ],
)
def test_price_ramp_params_validation_messages(params, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PriceRampParams(**params)


# Random asset_info values, completions and rates: orders never exceed what asset_info allows.
_amount = st.floats(min_value=0, max_value=50, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["PV", "Load", "SmartMeter", "Storage"]),
    values=st.fixed_dictionaries(
        dict.fromkeys(
            (
                "available_energy_kWh",
                "energy_requirement_kWh",
                "energy_to_sell",
                "energy_to_buy",
                "energy_active_in_offers",
                "energy_active_in_bids",
                "used_storage",
            ),
            _amount,
        )
    ),
    completion=st.sampled_from(range(0, 100, 10)),
    mmr=st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
)
def test_energy_never_exceeds_asset_info(kind, values, completion, mmr):
    asset = AssetView("a", "a", kind, values)
    limits = {
        "PV": {"offer": values["available_energy_kWh"]},
        "Load": {"bid": values["energy_requirement_kWh"]},
        "SmartMeter": {"offer": values["available_energy_kWh"], "bid": values["energy_requirement_kWh"]},
        "Storage": {
            "offer": values["energy_to_sell"] + values["energy_active_in_offers"],
            "bid": values["energy_to_buy"] + values["energy_active_in_bids"],
        },
    }[kind]
    tou = TimeOfUseParams(table=[{"time": "00:00", "buy_rate": 12, "sell_rate": 8}])
    decisions = [
        ramp_decide(asset, market(completion, mmr=mmr), PriceRampParams(), NO_STATE),
        tou_decide(asset, market(completion), tou, NO_STATE),
    ]
    if kind == "Storage":
        decisions.append(storage_decide(asset, market(completion), StorageArbitrageParams(), StorageState()))
    for decision in decisions:
        for command in wire(decision):
            if command["type"] in ("offer", "bid"):
                assert command["type"] in limits
                assert 0.00002 <= command["energy"] <= limits[command["type"]]
                assert command["price"] >= 0 and math.isfinite(command["price"])


# ---------------------------------------------------------------- storage_arbitrage


@pytest.mark.parametrize(
    ("completion", "sell", "buy"), [(0, 30.0, 0.0), (50, 30 - 5 * 5 / 9, 24.9 * 5 / 9), (90, 25.0, 24.9)]
)
def test_storage_bids_and_offers_on_both_ramps_in_one_decision(completion, sell, buy):
    decided = orders(
        storage_decide(battery(to_sell=0.4, to_buy=0.6), market(completion), StorageArbitrageParams(), StorageState())
    )
    assert decided["offer"]["energy"] == 0.4 and rate(decided["offer"]) == pytest.approx(sell)
    assert decided["bid"]["energy"] == 0.6 and rate(decided["bid"]) == pytest.approx(buy)


def test_storage_never_sells_below_average_purchase_rate_plus_margin():
    params = StorageArbitrageParams(margin=2.0)
    state = StorageState(slot=SLOT, used_storage=0.5, energy_traded=0.0, held_kWh=0.3, avg_purchase_rate=26.0)
    offer = orders(storage_decide(battery(used=0.5), market(90), params, state))["offer"]
    assert rate(offer) == pytest.approx(28.0)  # ramp would say 25
    offer = orders(storage_decide(battery(used=0.5), market(0), params, state))["offer"]
    assert rate(offer) == pytest.approx(30.0)  # ramp above the floor


def test_storage_learns_its_average_purchase_rate_from_its_bids():
    params = StorageArbitrageParams(buy_rate_start=10, buy_rate_end=20, sell_rate_start=22, sell_rate_end=21)
    first = storage_decide(battery(used=0.2), market(0), params, StorageState())
    assert first.state.bid_rate == 10.0 and first.state.avg_purchase_rate == 0.0
    # 0.3 kWh bought at the 10 ct bid, then 0.2 kWh more at the 15 ct bid (pay-as-bid).
    second = storage_decide(battery(used=0.5, traded=0.3), market(45), params, first.state)
    assert second.state.held_kWh == pytest.approx(0.3)
    assert second.state.avg_purchase_rate == pytest.approx(10.0)
    third = storage_decide(battery(used=0.7, traded=0.5), market(90), params, second.state)
    assert third.state.avg_purchase_rate == pytest.approx((0.3 * 10 + 0.2 * 15) / 0.5)
    # Sold 0.1 and bought 0.1 in the same interval: used_storage unchanged, energy_traded +0.2.
    fourth = storage_decide(battery(used=0.7, traded=0.7), market(90), params, third.state)
    assert fourth.state.held_kWh == pytest.approx(0.5)
    assert fourth.state.avg_purchase_rate == pytest.approx((0.4 * 12 + 0.1 * 20) / 0.5)
    assert StorageState.model_validate(json.loads(json.dumps(fourth.state.model_dump()))) == fourth.state


def test_storage_respects_soc_caps_and_withdraws_orders_the_caps_forbid():
    params = StorageArbitrageParams(min_soc_kWh=0.4, max_soc_kWh=0.8)
    decided = orders(storage_decide(battery(to_sell=0.4, to_buy=0.6, used=0.5), market(0), params, StorageState()))
    assert decided["offer"]["energy"] == pytest.approx(0.1)  # down to min_soc only
    assert decided["bid"]["energy"] == pytest.approx(0.3)  # up to max_soc only
    full = storage_decide(
        battery(to_sell=0.0, in_offers=0.2, to_buy=0.0, in_bids=0.1, used=0.8),
        market(0),
        StorageArbitrageParams(max_soc_kWh=0.8, min_soc_kWh=0.8),
        StorageState(),
    )
    assert full.commands == [WithdrawOrders("offer"), WithdrawOrders("bid")]
    assert wire(full) == [
        {"type": "delete_offer", "offer": None, "offer_id": None, "time_slot": None},
        {"type": "delete_bid", "bid": None, "bid_id": None, "time_slot": None},
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"buy_rate_end": 26}, r"buy_rate_end \(26.0\) must be < sell_rate_end \(25.0\)"),
        ({"buy_rate_start": 20, "buy_rate_end": 10}, "buying rates ramp up"),
        ({"sell_rate_start": 20, "sell_rate_end": 22, "buy_rate_end": 5}, "selling rates ramp down"),
        ({"min_soc_kWh": 1.0, "max_soc_kWh": 0.5}, r"min_soc_kWh \(1.0\) must be <= max_soc_kWh"),
        ({"margin": -1}, "greater than or equal to 0"),
    ],
)
def test_storage_params_validation_messages(params, message):
    with pytest.raises(ValidationError, match=message):
        StorageArbitrageParams(**params)


# ---------------------------------------------------------------- time_of_use

TABLE = [{"time": "07:00", "buy_rate": 30, "sell_rate": 12}, {"time": "22:00", "buy_rate": 18, "sell_rate": 6}]


@pytest.mark.parametrize(
    ("slot", "buy", "sell"),
    [
        ("2024-06-01T06:45", 18.0, 6.0),  # before the first row: yesterday's last row carries over
        ("2024-06-01T07:00", 30.0, 12.0),
        ("2024-06-01T21:45", 30.0, 12.0),
        ("2024-06-02T22:00", 18.0, 6.0),
    ],
)
def test_time_of_use_steps_repeat_daily(slot, buy, sell):
    params = TimeOfUseParams(table=TABLE)
    assert params.rates_at(slot) == (buy, sell)


@pytest.mark.parametrize("completion", [0, 50, 90])
def test_time_of_use_load_bids_buy_rate_pv_offers_sell_rate_storage_both(completion):
    params = TimeOfUseParams(table=TABLE)
    view = market(completion, slot="2024-06-01T12:00")
    assert orders(tou_decide(load(0.5), view, params, NO_STATE))["bid"]["price"] == 15.0
    assert orders(tou_decide(pv(2.0), view, params, NO_STATE))["offer"]["price"] == 24.0
    both = orders(tou_decide(battery(to_sell=0.4, to_buy=0.6), view, params, NO_STATE))
    assert (rate(both["bid"]), rate(both["offer"])) == pytest.approx((30.0, 12.0))


@pytest.mark.parametrize(
    "text",
    [
        "time;buy_rate;sell_rate\n07:00;30;12\n22:00;18;6\n",
        "time,buy_rate,sell_rate\n07:00,30,12\n\n22:00,18,6\n",
        "\ufeffsell_rate;time;buy_rate\r\n12;07:00;30,0\r\n6;22:00;18\r\n",
    ],
)
def test_time_of_use_reads_csv_with_either_separator(tmp_path, text):
    path = tmp_path / "tou.csv"
    path.write_text(text, encoding="utf-8")
    params = TimeOfUseParams(csv_path=str(path))
    assert params.rates_at("2024-06-01T12:00") == (30.0, 12.0)
    assert params.rates_at("2024-06-01T23:00") == (18.0, 6.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("when;buy;sell\n07:00;1;2\n", "line 1: header must be time;buy_rate;sell_rate"),
        ("time;buy_rate;sell_rate\n", "has a header but no rows"),
        ("time;buy_rate;sell_rate\n07:00;1;2\n7h;1;2\n", r"line 3, column 'time': expected a time of day HH:MM"),
        ("time;buy_rate;sell_rate\n07:00;cheap;2\n", r"line 2, column 'buy_rate': expected a number, got 'cheap'"),
        ("time,buy_rate,sell_rate\n07:00,1,-2\n", r"line 2, column 'sell_rate': expected a finite rate >= 0"),
        ("time;buy_rate;sell_rate\n07:00;1;2;3\n", "line 2: expected 3 columns"),
        ("time;buy_rate;sell_rate\n07:00;1;2\n\n07:00;3;4\n", "line 4, column 'time': 07:00 already given on line 2"),
    ],
)
def test_time_of_use_csv_errors_name_line_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        TimeOfUseParams(csv_path=str(path))
    assert "bad.csv" in str(error.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "exactly one of csv_path"),
        ({"csv_path": "x.csv", "table": TABLE}, "exactly one of csv_path"),
        ({"csv_path": "/nonexistent/tou.csv"}, "cannot read it"),
        ({"table": []}, "table: a schedule needs at least one entry"),
        ({"table": [TABLE[0], TABLE[0]]}, "table: time 07:00 appears twice"),
        ({"table": [{"time": "24:00", "buy_rate": 1, "sell_rate": 1}]}, "expected a time of day HH:MM"),
    ],
)
def test_time_of_use_params_errors(params, message):
    with pytest.raises(ValueError, match=message):
        TimeOfUseParams(**params)


# ---------------------------------------------------------------- grid_fee


def node(fee: float | None = 2.0, traded: float | None = 1.0) -> MarketNodeView:
    stats = {
        "min_trade_rate": None,
        "max_trade_rate": None,
        "avg_trade_rate": None,
        "median_trade_rate": None,
        "total_traded_energy_kWh": traded,
    }
    return MarketNodeView("m-uuid", "House 1", stats, fee, fee)


def fee_commands(decision: Decision) -> list[float]:
    return [command.fee for command in decision.commands if isinstance(command, SetGridFee)]


def test_grid_fee_only_sends_a_fee_that_differs_from_the_current_one():
    params = GridFeeParams(base_fee=2.0, congestion_threshold_kWh=5, fee_step=1.5)
    assert decide_market(node(fee=2.0), market(event="market"), params, NO_STATE).commands == []
    assert wire(decide_market(node(fee=3.0), market(event="market"), params, NO_STATE)) == [
        {"type": "grid_fees", "data": {"fee_const": 2.0}}
    ]
    assert fee_commands(decide_market(node(fee=None), market(event="market"), params, NO_STATE)) == [2.0]


def test_grid_fee_steps_up_after_congestion_and_is_capped():
    params = GridFeeParams(base_fee=2.0, congestion_threshold_kWh=5, fee_step=1.5, max_fee=3.0)
    assert fee_commands(decide_market(node(traded=5.0), market(event="market"), params, NO_STATE)) == []
    assert fee_commands(decide_market(node(traded=5.1), market(event="market"), params, NO_STATE)) == [3.0]
    assert fee_commands(decide_market(node(traded=None, fee=9), market(event="market"), params, NO_STATE)) == [2.0]
    uncapped = GridFeeParams(base_fee=2.0, congestion_threshold_kWh=5, fee_step=1.5)
    assert fee_commands(decide_market(node(traded=6), market(event="market"), uncapped, NO_STATE)) == [3.5]


def test_grid_fee_follows_its_schedule_and_ignores_ticks():
    params = GridFeeParams(base_fee=9.0, schedule=[{"time": "17:00", "fee": 4.0}, {"time": "08:00", "fee": 1.0}])

    def at(slot: str) -> list[float]:
        return fee_commands(decide_market(node(fee=0.0), market(event="market", slot=slot), params, NO_STATE))

    assert (at("2024-06-01T07:45"), at("2024-06-01T12:00"), at("2024-06-01T17:00")) == ([4.0], [1.0], [4.0])
    assert decide_market(node(fee=0.0), market(event="tick"), params, NO_STATE).commands == []


def test_grid_fee_requests_dso_stats_when_asked():
    params = GridFeeParams(base_fee=2.0, request_stats=True)
    assert decide_market(node(fee=2.0), market(event="market"), params, NO_STATE).commands == [RequestMarketStats()]
    assert wire(decide_market(node(fee=2.0), market(event="market"), params, NO_STATE)) == [
        {"type": "dso_market_stats", "data": {}}
    ]
    assert decide_market(node(fee=2.0), market(event="tick"), params, NO_STATE).commands == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"base_fee": -1}, "greater than or equal to 0"),
        ({"base_fee": 5, "max_fee": 4}, r"base_fee \(5.0\) must be <= max_fee \(4.0\)"),
        ({"schedule": [{"time": "8", "fee": 1}]}, "expected a time of day HH:MM"),
        ({"schedule": [{"time": "08:00", "fee": 1}, {"time": "8:00", "fee": 2}]}, "schedule: time 08:00 appears twice"),
        ({"fee": 1}, "Extra inputs are not permitted"),
    ],
)
def test_grid_fee_params_validation_messages(params, message):
    with pytest.raises(ValidationError, match=message):
        GridFeeParams(**params)


# ---------------------------------------------------------------- purity and registry


def test_strategies_are_deterministic_and_do_not_mutate_their_inputs():
    stored = StorageState(
        slot=SLOT, used_storage=0.5, energy_traded=0.0, held_kWh=0.2, avg_purchase_rate=20.0, bid_rate=22.0
    )
    cases = [
        (ramp_decide, pv(1.0), PriceRampParams(), NO_STATE),
        (tou_decide, meter(), TimeOfUseParams(table=TABLE), NO_STATE),
        (storage_decide, battery(used=0.6, traded=0.1), StorageArbitrageParams(), stored),
    ]
    for decide, asset, params, state in cases:
        before = copy.deepcopy(state)
        first, second = decide(asset, market(30), params, state), decide(asset, market(30), params, state)
        assert first == second and first.commands
        assert state == before
    node_view = node(fee=1.0)
    grid = GridFeeParams(base_fee=2.0)
    assert decide_market(node_view, market(event="market"), grid, NO_STATE) == decide_market(
        node_view, market(event="market"), grid, NO_STATE
    )


def test_registry_lists_the_four_strategies_with_their_targets_and_kinds():
    assert set(STRATEGIES) == {"price_ramp", "storage_arbitrage", "time_of_use", "grid_fee"}
    assert get_strategy("storage_arbitrage").kinds == frozenset({"Storage"})
    assert get_strategy("price_ramp").kinds == frozenset({"PV", "Load", "Storage", "SmartMeter"})
    assert (get_strategy("grid_fee").targets, get_strategy("grid_fee").kinds) == ("market", frozenset())
    assert all(spec.targets == "asset" for name, spec in STRATEGIES.items() if name != "grid_fee")
    with pytest.raises(ValueError, match="unknown strategy 'ramp'; known strategies: grid_fee, price_ramp"):
        get_strategy("ramp")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_params_model_forbids_unknown_keys(name):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        get_strategy(name).params_model.model_validate(
            {"typo_key": 1, "table": TABLE} if name == "time_of_use" else {"typo_key": 1}
        )


# ---------------------------------------------------------------- typed commands and states


def test_a_strategy_emits_the_commands_the_sdk_builds_for_its_users():
    """Sent as the protocol's typed commands (workers/commands.py), the ones the SDK's builder
    makes: the same objects on the wire."""
    ramp_orders = ramp_decide(meter(0.3, 0.2), market(50), PriceRampParams(), NO_STATE).commands
    withdrawals = storage_decide(
        battery(to_sell=0.0, in_offers=0.2, to_buy=0.0, in_bids=0.1, used=0.8),
        market(0),
        StorageArbitrageParams(max_soc_kWh=0.8, min_soc_kWh=0.8),
        StorageState(),
    ).commands
    grid = decide_market(node(fee=3.0), market(event="market"), GridFeeParams(request_stats=True), NO_STATE).commands
    assert [type(command) for command in (*ramp_orders, *withdrawals, *grid)] == [
        PlaceOrder,
        PlaceOrder,
        WithdrawOrders,
        WithdrawOrders,
        RequestMarketStats,
        SetGridFee,
    ]
    offer, bid = ramp_orders
    assert isinstance(offer, PlaceOrder) and isinstance(bid, PlaceOrder)
    user = ClientCommandBuffer()
    user.offer_energy("sm", offer.energy, offer.price).bid_energy("sm", bid.energy, bid.price)
    user.delete_offer("sm").delete_bid("sm").last_market_dso_stats("m").grid_fees("m", 0.0)
    built = user.execute_batch()
    assert built["sm"] == [wire_command(command) for command in (*ramp_orders, *withdrawals)]
    assert built["m"] == [wire_command(command) for command in grid]
    assert all(wire_command(command)["time_slot"] is None for command in ramp_orders)  # REDIS.md 11.1
    with pytest.raises(TypeError, match="not a strategy command"):
        wire_command({"type": "offer"})  # type: ignore[arg-type]  # what strategies returned before


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_declares_a_state_that_round_trips_through_json(name):
    spec = get_strategy(name)
    fresh = spec.fresh_state
    assert spec.state_model.model_validate(json.loads(json.dumps(fresh.model_dump()))) == fresh
    assert spec.state_model.model_config.get("frozen")  # decide returns a new state, never edits one


def test_storage_state_reads_what_the_untyped_strategy_stored():
    old = {"slot": SLOT, "used_storage": 0.5, "energy_traded": 0.1, "held_kWh": 0.2, "avg_purchase_rate": 20.0}
    state = StorageState.model_validate(old)
    assert state.model_dump() == {**old, "bid_rate": None}
    decided = storage_decide(battery(used=0.6, traded=0.2), market(30), StorageArbitrageParams(), state)
    assert decided.state.held_kWh == pytest.approx(0.3)  # 0.1 kWh bought since the stored event
