"""From a market's open orders to trades (EXCHANGE.md 4, 5).

Matching runs in each market on the orders of its subtree, but pairs two orders only in their
lowest common market, where each order is labelled by the branch it comes from
(:func:`candidates`). This reproduces gsy-e's chain of market agents (which pairs trade, the
buyer's price, each market's fee and rate) without copying orders from market to market, so the
cost of a tick stays linear in the number of orders. :func:`execute` turns a match into a trade:
it settles the fees along the path and updates the order book, both assets and the markets' stats.
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass
from datetime import datetime

from gsy_local_exchange import fees as fee_model
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.grid import MarketArea
from gsy_local_exchange.market_stats import book_trade
from gsy_local_exchange.matching import Candidate, Match
from gsy_local_exchange.order_book import OrderBook


@dataclass
class TradeRecord:
    """One executed trade between two assets, with its split along the path."""

    trade_id: str
    time: datetime
    seller: Asset
    buyer: Asset
    energy: float
    offer_id: str
    bid_id: str
    residual_offer_id: str | None
    residual_bid_id: str | None
    meeting_market: MarketArea
    path: list[MarketArea]  # from the seller's market up to the meeting market and down to the buyer's
    settlement: fee_model.Settlement

    @property
    def buyer_fee(self) -> float:
        return self.settlement.market_fees[-1]

    @property
    def seller_fee(self) -> float:
        return self.settlement.market_fees[0]


def candidates(
    market: MarketArea, tick: int, min_offer_age: int, min_bid_age: int, fee_type: int
) -> tuple[list[Candidate], list[Candidate]]:
    """(bids, offers) of ``market`` at their rates here; an order reaches a market ``min_*_age``
    ticks per market it climbed (EXCHANGE.md 5.1)."""
    depth = market.depth
    offers = []
    for order in market.offers.values():
        asset = order.asset
        hops = len(asset.path) - 1 - depth
        if hops and tick - order.creation_tick < min_offer_age * hops:
            continue
        trader = asset.path[depth + 1].uuid if hops else asset.uuid
        rate = fee_model.offer_rate_in_market(order.original_rate, asset.fee_cum[depth], fee_type)
        offers.append(Candidate(order.id, trader, rate, order.energy, order.sequence))
    bids = []
    for order in market.bids.values():
        asset = order.asset
        hops = len(asset.path) - 1 - depth
        if hops and tick - order.creation_tick < min_bid_age * hops:
            continue
        trader = asset.path[depth + 1].uuid if hops else asset.uuid
        rate = fee_model.bid_rate_in_market(order.original_rate, asset.fee_cum[depth + 1], fee_type)
        bids.append(Candidate(order.id, trader, rate, order.energy, order.sequence))
    return bids, offers


def execute(market: MarketArea, match: Match, now: datetime, book: OrderBook, fee_type: int) -> TradeRecord:
    """Trade ``match`` of ``market`` at simulated time ``now``."""
    bid = book.current(match.bid_id)
    offer = book.current(match.offer_id)
    energy = match.energy
    depth = market.depth
    seller, buyer = offer.asset, bid.asset
    bid_rate_here = fee_model.bid_rate_in_market(bid.original_rate, buyer.fee_cum[depth + 1], fee_type)
    paid_rate = fee_model.buyer_rate(match.rate, bid.original_rate, bid_rate_here, fee_type)
    path = list(reversed(seller.path[depth:])) + buyer.path[depth + 1 :]
    settlement = fee_model.settle(paid_rate, [m.fee_running for m in path], fee_type)
    residual_offer = book.consume(offer, energy)
    residual_bid = book.consume(bid, energy)
    record = TradeRecord(
        str(uuid_module.uuid4()),
        now,
        seller,
        buyer,
        energy,
        offer.id,
        bid.id,
        residual_offer.id if residual_offer else None,
        residual_bid.id if residual_bid else None,
        market,
        path,
        settlement,
    )
    seller.record_trade(0.0, energy, 0.0, settlement.seller_revenue_rate * energy, record.seller_fee * energy)
    buyer.record_trade(energy, 0.0, paid_rate * energy, 0.0, record.buyer_fee * energy)
    book_trade(record.path, record.meeting_market, record.settlement, energy)
    return record
