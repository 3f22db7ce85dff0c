"""The grid engine: tree, spot markets, orders, matching and trades. No I/O.

Orders are kept once, with their asset; every market holds an index of the open orders of its
subtree. Matching runs bottom-up and pairs two orders only in their lowest common market,
where each order is labelled by the branch it comes from. This reproduces gsy-e's chain of
market agents (which pairs trade, the buyer's price, each market's fee and rate) without copying
orders from market to market, so the cost of a tick stays linear in the number of orders.
"""

from __future__ import annotations

import itertools
import logging
import uuid as uuid_module
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from gsy_e_sdk.wire.slug import slugify
from gsy_local_exchange import fees as fee_model
from gsy_local_exchange import scenario as sc
from gsy_local_exchange.assets import ENERGY_TOLERANCE, Asset, InfiniteSource, TradingAsset, build_asset
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.matching import ENERGY_EPSILON, Candidate, Match, pay_as_bid, pay_as_clear
from gsy_local_exchange.orders import BID, OFFER, Order
from gsy_local_exchange.stats import Kpi, MarketSlotStats
from gsy_local_exchange.templates import ramp_rate, update_index, updates_per_slot

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class MarketArea:
    node: sc.MarketNode
    uuid: str
    parent: MarketArea | None
    depth: int
    fee_type: int
    children: list = field(default_factory=list)
    fee_configured: float | None = None  # ct/kWh (type 1) or percent (type 2), as configured
    fee_running: float = 0.0  # of the running slot's market: ct/kWh or a fraction
    fee_last: float = 0.0  # of the last finished slot's market
    offers: dict[str, Order] = field(default_factory=dict)  # open orders of the whole subtree
    bids: dict[str, Order] = field(default_factory=dict)
    dirty: bool = False
    stats: MarketSlotStats = field(default_factory=MarketSlotStats)
    last_stats: MarketSlotStats | None = None
    kpi: Kpi = field(default_factory=Kpi)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def slug(self) -> str:
        return slugify(self.node.name)

    @property
    def externally_controllable(self) -> bool:
        return self.node.externally_controllable

    def fee_value(self) -> float:
        """The running fee as a per-kWh amount (constant) or a fraction (percentage)."""
        if self.fee_configured is None or self.fee_configured <= 0:
            return 0.0
        return self.fee_configured / 100 if self.fee_type == fee_model.PERCENTAGE else self.fee_configured


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
    path: list[MarketArea]
    settlement: fee_model.Settlement

    @property
    def buyer_fee(self) -> float:
        return self.settlement.market_fees[-1]

    @property
    def seller_fee(self) -> float:
        return self.settlement.market_fees[0]


class GridEngine:
    def __init__(self, scenario: sc.Scenario, clock: SimulationClock) -> None:
        self.scenario = scenario
        self.settings = scenario.settings
        self.clock = clock
        self.fee_type = self.settings.grid_fee_type
        self.markets: list[MarketArea] = []
        self.assets: list[TradingAsset | InfiniteSource] = []
        self.areas: dict[str, MarketArea | Asset] = {}
        self.orders: dict[str, Order] = {}
        self.slot_index = -1
        self.tick = 0
        self._sequence = itertools.count()
        self.market_maker_rate = self.settings.market_maker_rate
        self.feed_in_tariff_rate: float | None = None
        self.trades: list[TradeRecord] = []  # of the running slot
        self._aliases: dict[str, str] = {}  # matched order id -> id of its residual, this tick
        self._build_tree()
        self._post_order = sorted(self.markets, key=lambda m: -m.depth)
        self._any_min_age = self.settings.min_offer_age > 0 or self.settings.min_bid_age > 0

    # ------------------------------------------------------------------ tree
    def _build_tree(self) -> None:
        settings = self.settings
        root_node = self.scenario.root
        for node in root_node.children:
            if isinstance(node, sc.InfiniteBusNode) and node.energy_sell_rate is not None:
                self.market_maker_rate = node.energy_sell_rate
            if isinstance(node, sc.MarketMakerNode) and node.energy_rate is not None:
                self.market_maker_rate = node.energy_rate
        for node in root_node.children:
            if isinstance(node, sc.InfiniteBusNode):
                self.feed_in_tariff_rate = (
                    node.energy_buy_rate if node.energy_buy_rate is not None else settings.feed_in_tariff
                )

        def add_market(node: sc.MarketNode, parent: MarketArea | None, path: list[MarketArea]) -> MarketArea:
            market = MarketArea(
                node=node,
                uuid=node.uuid or str(uuid_module.uuid4()),
                parent=parent,
                depth=len(path),
                fee_type=self.fee_type,
            )
            configured = node.grid_fee_percentage if self.fee_type == fee_model.PERCENTAGE else node.grid_fee_constant
            market.fee_configured = configured if configured is not None and configured > 0 else None
            self.markets.append(market)
            self.areas[market.uuid] = market
            here = [*path, market]
            for child in node.children:
                if isinstance(child, sc.MarketNode):
                    market.children.append(add_market(child, market, here))
                else:
                    asset = build_asset(
                        child,
                        child.uuid or str(uuid_module.uuid4()),
                        here,
                        self.scenario.base_dir,
                        self.clock.slot_length,
                        self.market_maker_rate,
                        settings.feed_in_tariff,
                    )
                    self.assets.append(asset)
                    self.areas[asset.uuid] = asset
                    market.children.append(asset)
            return market

        self.root = add_market(root_node, None, [])

    @property
    def slot_start(self) -> datetime:
        return self.clock.slot_start(self.slot_index)

    # ------------------------------------------------------------------ slots
    def begin_slot(self, slot_index: int) -> None:
        """Close the previous slot and open the markets of ``slot_index`` (EXCHANGE.md 7)."""
        self.slot_index = slot_index
        self.tick = 0
        self.orders.clear()
        self.trades = []
        for market in self.markets:
            market.offers.clear()
            market.bids.clear()
            market.dirty = False
            if slot_index > 0:
                market.last_stats = market.stats
                market.fee_last = market.fee_running
            market.stats = MarketSlotStats()
            market.fee_running = market.fee_value()
        start = self.slot_start
        for asset in self.assets:
            asset.start_slot(start, self.clock.slot_length)
            # Fees entered from each depth upwards: fee_cum[d] = sum of running fees path[d:].
            running = 0.0
            cumulative = [0.0] * (len(asset.path) + 1)
            for depth in range(len(asset.path) - 1, -1, -1):
                running += asset.path[depth].fee_running
                cumulative[depth] = running
            asset.fee_cum = cumulative

    def market_time(self, tick: int | None = None) -> datetime:
        return self.clock.tick_time(self.slot_index, self.tick if tick is None else tick)

    # ------------------------------------------------------------------ orders
    def place_order(self, asset: Asset, side: str, energy: float, rate: float, creation_time: datetime) -> Order:
        order = Order(
            str(uuid_module.uuid4()),
            side,
            asset,
            energy,
            rate,
            asset.market.fee_running,
            self.fee_type,
            creation_time,
            self.slot_start,
            self.tick,
            next(self._sequence),
        )
        self._index(order)
        return order

    def _index(self, order: Order) -> None:
        self.orders[order.id] = order
        book = order.asset.offers if order.side == OFFER else order.asset.bids
        book[order.id] = order
        for market in order.asset.path:
            (market.offers if order.side == OFFER else market.bids)[order.id] = order
            market.dirty = True

    def remove_order(self, order: Order) -> None:
        self.orders.pop(order.id, None)
        book = order.asset.offers if order.side == OFFER else order.asset.bids
        book.pop(order.id, None)
        for market in order.asset.path:
            (market.offers if order.side == OFFER else market.bids).pop(order.id, None)

    def remove_orders(self, asset: Asset, side: str) -> list[str]:
        book = asset.offers if side == OFFER else asset.bids
        removed = list(book)
        for order in list(book.values()):
            self.remove_order(order)
        return removed

    # ------------------------------------------------------------------ template strategies
    def run_templates(self, controlled: set[str]) -> None:
        """Price updates of built-in strategies for assets no client controls (EXCHANGE.md 3.8)."""
        tick = self.tick
        now = self.market_time()
        elapsed = tick * self.clock.tick_length.total_seconds()
        previous = (tick - 1) * self.clock.tick_length.total_seconds()
        slot_seconds = self.clock.slot_length.total_seconds()
        for asset in self.assets:
            if asset.uuid in controlled:
                continue
            if isinstance(asset, InfiniteSource):
                if tick == 0:
                    self._post_infinite(asset, now)
                continue
            interval = asset.node.update_interval * 60
            updates = updates_per_slot(slot_seconds, interval)
            step = update_index(elapsed, interval, updates)
            if tick > 0 and step == update_index(previous, interval, updates):
                continue
            self._template_reprice(asset, step, updates, now)

    def _post_infinite(self, asset: InfiniteSource, now: datetime) -> None:
        sell, buy = asset.rates_at(self.slot_start)
        if sell is not None:
            self.place_order(asset, OFFER, asset.sellable(), sell, now)
        if buy is not None and buy > 0:
            self.place_order(asset, BID, asset.buyable(), buy, now)

    def _template_reprice(self, asset: TradingAsset, step: int, updates: int, now: datetime) -> None:
        node = asset.node
        mmr = self.market_maker_rate
        if asset.can_offer:
            seller = cast(sc.SellerNode, node)  # only PVs, storages and smart meters offer
            initial = getattr(seller, "initial_selling_rate", None)
            if initial is None or seller.use_market_maker_rate:
                initial = mmr
            final = seller.final_selling_rate
            rate = ramp_rate(
                initial,
                min(final, initial),
                step,
                updates,
                seller.fit_to_limit,
                getattr(seller, "energy_rate_decrease_per_update", None),
            )
            self.remove_orders(asset, OFFER)
            energy = asset.sellable()
            if energy >= ENERGY_TOLERANCE:
                self.place_order(asset, OFFER, energy, rate, now)
        if asset.can_bid:
            buyer = cast(sc.BuyerNode, node)  # only loads, storages and smart meters bid
            final = buyer.final_buying_rate
            if getattr(buyer, "use_market_maker_rate", False) and asset.kind == "Load":
                final = mmr + asset.fee_cum[0]  # the market maker's rate plus the fees to reach it
            initial = buyer.initial_buying_rate
            rate = ramp_rate(
                initial,
                max(final, initial),
                step,
                updates,
                buyer.fit_to_limit,
                getattr(buyer, "energy_rate_increase_per_update", None),
            )
            self.remove_orders(asset, BID)
            energy = asset.buyable()
            if energy >= ENERGY_TOLERANCE:
                self.place_order(asset, BID, energy, rate, now)

    # ------------------------------------------------------------------ matching
    def match(self) -> list[TradeRecord]:
        """Match every market bottom-up; only markets whose subtree changed are evaluated."""
        executed: list[TradeRecord] = []
        algorithm = pay_as_clear if self.settings.bid_offer_match_algo == 2 else pay_as_bid
        now = self.market_time()
        for market in self._post_order:
            if not market.dirty or not market.offers or not market.bids:
                continue
            market.dirty = self._any_min_age  # orders may come of age at this level later
            bids, offers = self._candidates(market)
            if not bids or not offers:
                continue
            for match in algorithm(bids, offers):
                executed.append(self._execute(market, match, now))
        self.trades.extend(executed)
        return executed

    def _candidates(self, market: MarketArea) -> tuple[list[Candidate], list[Candidate]]:
        depth = market.depth
        fee_type = self.fee_type
        tick = self.tick
        min_offer_age = self.settings.min_offer_age
        min_bid_age = self.settings.min_bid_age
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

    def _execute(self, market: MarketArea, match: Match, now: datetime) -> TradeRecord:
        bid = self.orders[self._current_id(match.bid_id)]
        offer = self.orders[self._current_id(match.offer_id)]
        energy = match.energy
        depth = market.depth
        seller, buyer = offer.asset, bid.asset
        bid_rate_here = fee_model.bid_rate_in_market(bid.original_rate, buyer.fee_cum[depth + 1], self.fee_type)
        paid_rate = fee_model.buyer_rate(match.rate, bid.original_rate, bid_rate_here, self.fee_type)
        path = list(reversed(seller.path[depth:])) + buyer.path[depth + 1 :]
        settlement = fee_model.settle(paid_rate, [m.fee_running for m in path], self.fee_type)
        residual_offer = self._consume(offer, energy)
        residual_bid = self._consume(bid, energy)
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
        self._book_market_stats(record)
        return record

    def _current_id(self, order_id: str) -> str:
        while order_id in self._aliases:
            order_id = self._aliases[order_id]
        return order_id

    def _consume(self, order: Order, energy: float) -> Order | None:
        """Remove the matched part; a remainder becomes a new order with a new id."""
        self.remove_order(order)
        if order.energy - energy <= ENERGY_EPSILON:
            return None
        residual = order.split(energy, next(self._sequence))
        order.energy = energy
        self._index(residual)
        self._aliases[order.id] = residual.id
        return residual

    def _book_market_stats(self, record: TradeRecord) -> None:
        energy = record.energy
        meeting = record.meeting_market
        seller_side = True
        for market, fee, rate in zip(
            record.path, record.settlement.market_fees, record.settlement.market_rates, strict=True
        ):
            stats = market.stats
            stats.add_trade(rate, energy)
            stats.fee_revenue += fee * energy
            amount = (rate - fee) * energy
            if market is meeting:
                stats.accumulated.sold += energy
                stats.accumulated.earned += amount
                stats.accumulated.bought += energy
                stats.accumulated.spent += amount
                market.kpi.demand += energy
                market.kpi.demand_from_inside += energy
                market.kpi.production += energy
                market.kpi.production_used_inside += energy
                seller_side = False
            elif seller_side:
                stats.accumulated.sold += energy
                stats.accumulated.earned += amount
                stats.external.bought += energy
                stats.external.spent += amount
                stats.exported += energy
                market.kpi.production += energy
            else:
                stats.accumulated.bought += energy
                stats.accumulated.spent += amount
                stats.external.sold += energy
                stats.external.earned += amount
                stats.imported += energy
                market.kpi.demand += energy
        ancestor = meeting.parent
        while ancestor is not None:
            ancestor.kpi.demand += energy
            ancestor.kpi.demand_from_inside += energy
            ancestor.kpi.production += energy
            ancestor.kpi.production_used_inside += energy
            ancestor = ancestor.parent

    def end_tick(self) -> None:
        """Forget residual aliases of this tick's matching and advance the tick counter."""
        self._aliases.clear()
        self.tick += 1

    # ------------------------------------------------------------------ statistics
    def dso_market_stats(self, market: MarketArea) -> dict:
        """``market_stats`` of the last finished slot (``{}`` during the first slot)."""
        last = market.last_stats
        if last is None:
            return {}
        summary = last.summary()
        summary.update(
            {
                "market_bill": {"Accumulated Trades": last.accumulated.to_wire()},
                "market_fee_revenue": round(last.fee_revenue, 8),
                "area_throughput": {"import": round(last.imported, 8), "export": round(last.exported, 8)},
                "self_sufficiency": market.kpi.self_sufficiency,
                "self_consumption": market.kpi.self_consumption,
                "market_energy_deviance": None,
            }
        )
        return summary
