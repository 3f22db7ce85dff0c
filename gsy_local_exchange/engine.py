"""The grid engine: the running slot's markets, orders and trades over a scenario's grid. No I/O.

The tree is built by :mod:`gsy_local_exchange.grid`, orders live in an
:class:`~gsy_local_exchange.order_book.OrderBook`, and trades are made by
:mod:`gsy_local_exchange.trading`; this class keeps the slot and the tick and runs matching
bottom-up, evaluating only the markets whose subtree changed.
"""

from __future__ import annotations

import uuid as uuid_module
from datetime import datetime

from gsy_local_exchange import scenario as sc
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.grid import build_grid
from gsy_local_exchange.matching import pay_as_bid, pay_as_clear
from gsy_local_exchange.order_book import OrderBook
from gsy_local_exchange.orders import Order
from gsy_local_exchange.stats import MarketSlotStats
from gsy_local_exchange.trading import TradeRecord, candidates, execute


class GridEngine:
    def __init__(self, scenario: sc.Scenario, clock: SimulationClock) -> None:
        self.settings = scenario.settings
        self.clock = clock
        self.fee_type = self.settings.grid_fee_type
        grid = build_grid(scenario, clock.slot_length)
        self.root = grid.root
        self.markets = grid.markets
        self.assets = grid.assets
        self.areas = grid.areas
        self.market_maker_rate = grid.market_maker_rate
        self.feed_in_tariff_rate = grid.feed_in_tariff_rate
        self.book = OrderBook()
        self.slot_index = -1
        self.tick = 0
        self._bottom_up = sorted(self.markets, key=lambda m: -m.depth)
        self._any_min_age = self.settings.min_offer_age > 0 or self.settings.min_bid_age > 0

    @property
    def orders(self) -> dict[str, Order]:
        return self.book.orders

    @property
    def slot_start(self) -> datetime:
        return self.clock.slot_start(self.slot_index)

    def market_time(self, tick: int | None = None) -> datetime:
        return self.clock.tick_time(self.slot_index, self.tick if tick is None else tick)

    # ------------------------------------------------------------------ slots and ticks
    def begin_slot(self, slot_index: int) -> None:
        """Close the previous slot and open the markets of ``slot_index`` (EXCHANGE.md 7)."""
        self.slot_index = slot_index
        self.tick = 0
        self.book.clear()
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

    def end_tick(self) -> None:
        """Forget residual aliases of this tick's matching and advance the tick counter."""
        self.book.end_tick()
        self.tick += 1

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
            self.book.next_sequence(),
        )
        self.book.add(order)
        return order

    def remove_order(self, order: Order) -> None:
        self.book.remove(order)

    def remove_orders(self, asset: Asset, side: str) -> list[str]:
        return self.book.remove_all(asset, side)

    # ------------------------------------------------------------------ matching
    def match(self) -> list[TradeRecord]:
        """Match every market bottom-up; only markets whose subtree changed are evaluated."""
        executed: list[TradeRecord] = []
        settings = self.settings
        algorithm = pay_as_clear if settings.bid_offer_match_algo == 2 else pay_as_bid
        now = self.market_time()
        for market in self._bottom_up:
            if not market.dirty or not market.offers or not market.bids:
                continue
            market.dirty = self._any_min_age  # orders may come of age at this level later
            bids, offers = candidates(market, self.tick, settings.min_offer_age, settings.min_bid_age, self.fee_type)
            if not bids or not offers:
                continue
            for match in algorithm(bids, offers):
                executed.append(execute(market, match, now, self.book, self.fee_type))
        return executed
