"""Matching and grid fees against the worked examples of EXCHANGE.md 4-5."""

from datetime import datetime, timedelta

import pytest

from gsy_local_exchange import fees
from gsy_local_exchange.aggregator_events import trade_entry
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.matching import Candidate, clearing_point, pay_as_bid, pay_as_clear
from gsy_local_exchange.orders import BID, OFFER
from gsy_local_exchange.scenario import parse_scenario
from gsy_local_exchange.simulation import Simulation


def test_pay_as_bid_trades_at_the_bid_rate_and_never_over_allocates():
    bids = [Candidate("b1", "A", 20, 1.0), Candidate("b2", "B", 12, 2.0)]
    offers = [Candidate("o1", "C", 10, 1.5), Candidate("o2", "D", 15, 5.0)]
    matches = pay_as_bid(bids, offers)
    assert [(m.bid_id, m.offer_id, m.energy, m.rate) for m in matches] == [("b1", "o1", 1.0, 20), ("b2", "o1", 0.5, 12)]
    assert all(next(o for o in offers if o.order_id == m.offer_id).rate <= m.rate for m in matches)


def test_pay_as_bid_skips_pairs_of_the_same_branch():
    matches = pay_as_bid(
        [Candidate("b", "house", 30, 1.0)], [Candidate("o1", "house", 5, 1.0), Candidate("o2", "other", 10, 1.0)]
    )
    assert [(m.offer_id, m.rate) for m in matches] == [("o2", 30)]


def test_pay_as_clear_single_rate_for_all_pairs():
    bids = [Candidate("b1", "A", 30, 1.0), Candidate("b2", "B", 25, 1.0), Candidate("b3", "C", 10, 1.0)]
    offers = [Candidate("o1", "D", 20, 1.0), Candidate("o2", "E", 24, 1.0), Candidate("o3", "F", 28, 1.0)]
    assert clearing_point(bids, offers) == (25, 2.0)
    matches = pay_as_clear(bids, offers)
    assert {m.rate for m in matches} == {25}
    assert sum(m.energy for m in matches) == pytest.approx(2.0)


def test_constant_fee_settlement_of_the_worked_example():
    # Path seller->buyer: House 1 (2), Grid (1), House 2 (3); Load bid 20 ct/kWh.
    split = fees.settle(20.0, [2.0, 1.0, 3.0], fees.CONSTANT)
    assert split.seller_revenue_rate == 14.0
    assert split.market_rates == (16.0, 17.0, 20.0)


def test_percentage_fee_settlement_of_the_worked_example():
    split = fees.settle(20.0, [0.1], fees.PERCENTAGE)
    assert split.seller_revenue_rate == pytest.approx(18.1818, abs=1e-4)
    assert split.market_fees[0] == pytest.approx(1.8182, abs=1e-4)


WORKED_EXAMPLE = {
    "name": "Grid",
    "grid_fee_constant": 1,
    "children": [
        {
            "name": "House 1",
            "grid_fee_constant": 2,
            "children": [{"name": "PV", "type": "PV", "allow_external_connection": True}],
        },
        {
            "name": "House 2",
            "grid_fee_constant": 3,
            "children": [{"name": "Load", "type": "LoadHours", "avg_power_W": 4000, "allow_external_connection": True}],
        },
    ],
}


def _engine_at_noon(bid_price: float, bid_energy: float = 1.0):
    scenario = parse_scenario(WORKED_EXAMPLE)
    clock = SimulationClock(datetime(2026, 6, 1, 12), timedelta(minutes=15), timedelta(seconds=15), timedelta(hours=1))
    simulation = Simulation(scenario, clock)
    engine = simulation.engine
    engine.begin_slot(0)
    pv, load = (next(a for a in engine.assets if a.name == name) for name in ("PV", "Load"))
    offer = engine.place_order(pv, OFFER, 1.0, 10.0, engine.market_time())
    engine.place_order(load, BID, bid_energy, bid_price, engine.market_time())
    return engine, simulation, pv, load, offer


def test_worked_example_end_to_end_in_the_engine():
    engine, _simulation, pv, load, offer = _engine_at_noon(20.0)
    assert offer.to_wire()["price"] == 12.0 and offer.to_wire()["original_price"] == 10.0
    [trade] = engine.match()
    assert trade.meeting_market.name == "Grid"
    assert load.ledger.spent == pytest.approx(20.0) and pv.ledger.earned == pytest.approx(14.0)
    revenue = {market.name: market.stats.fee_revenue for market in engine.markets}
    assert revenue == pytest.approx({"Grid": 1.0, "House 1": 2.0, "House 2": 3.0})
    events = {
        e["asset_id"]: e
        for e in (trade_entry(trade, load, False, False).model_dump(), trade_entry(trade, pv, True, False).model_dump())
    }
    assert events[load.uuid]["trade_price"] == 20.0 and events[load.uuid]["total_fee"] == 3.0
    assert events[pv.uuid]["trade_price"] == 16.0 and events[pv.uuid]["total_fee"] == 2.0
    assert events[pv.uuid]["seller"] == "PV" and events[pv.uuid]["buyer"] == "anonymous"


def test_worked_example_does_not_trade_below_the_path_fees():
    engine, *_ = _engine_at_noon(15.0)
    assert engine.match() == []


def test_partial_match_leaves_a_residual_with_a_new_id():
    engine, _, pv, load, offer = _engine_at_noon(20.0, bid_energy=0.4)
    [trade] = engine.match()
    assert trade.energy == pytest.approx(0.4) and trade.offer_id == offer.id
    assert trade.residual_offer_id not in (None, offer.id) and trade.residual_bid_id is None
    assert list(pv.offers) == [trade.residual_offer_id]
    assert pv.offers[trade.residual_offer_id].energy == pytest.approx(0.6)
    assert not load.bids
