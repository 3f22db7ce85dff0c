"""The grid of a scenario: markets and assets in a tree, indexed by uuid (EXCHANGE.md 2). No I/O
beyond the profiles the assets load."""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass, field
from datetime import timedelta

from gsy_e_sdk.wire.slug import slugify
from gsy_local_exchange import fees as fee_model
from gsy_local_exchange import scenario as sc
from gsy_local_exchange.assets import Asset, InfiniteSource, TradingAsset, build_asset
from gsy_local_exchange.orders import Order
from gsy_local_exchange.stats import Kpi, MarketSlotStats


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
class Grid:
    root: MarketArea
    markets: list[MarketArea]  # parents before their children
    assets: list[TradingAsset | InfiniteSource]
    areas: dict[str, MarketArea | Asset]  # by uuid, in tree order
    market_maker_rate: float
    feed_in_tariff_rate: float | None  # buying rate of an infinite bus under the root; None without one


def build_grid(scenario: sc.Scenario, slot_length: timedelta) -> Grid:
    """Markets and assets of ``scenario``; nodes without a uuid get a random one."""
    settings = scenario.settings
    fee_type = settings.grid_fee_type
    market_maker_rate, feed_in_tariff_rate = _reference_rates(scenario)
    markets: list[MarketArea] = []
    assets: list[TradingAsset | InfiniteSource] = []
    areas: dict[str, MarketArea | Asset] = {}

    def add_market(node: sc.MarketNode, parent: MarketArea | None, path: list[MarketArea]) -> MarketArea:
        market = MarketArea(
            node=node, uuid=node.uuid or str(uuid_module.uuid4()), parent=parent, depth=len(path), fee_type=fee_type
        )
        configured = node.grid_fee_percentage if fee_type == fee_model.PERCENTAGE else node.grid_fee_constant
        market.fee_configured = configured if configured is not None and configured > 0 else None
        markets.append(market)
        areas[market.uuid] = market
        here = [*path, market]
        for child in node.children:
            if isinstance(child, sc.MarketNode):
                market.children.append(add_market(child, market, here))
            else:
                asset = build_asset(
                    child,
                    child.uuid or str(uuid_module.uuid4()),
                    here,
                    scenario.base_dir,
                    slot_length,
                    market_maker_rate,
                    settings.feed_in_tariff,
                )
                assets.append(asset)
                areas[asset.uuid] = asset
                market.children.append(asset)
        return market

    root = add_market(scenario.root, None, [])
    return Grid(root, markets, assets, areas, market_maker_rate, feed_in_tariff_rate)


def _reference_rates(scenario: sc.Scenario) -> tuple[float, float | None]:
    """(market maker rate, feed-in tariff rate) as the sources under the root set them (REDIS.md 7.1)."""
    market_maker_rate = scenario.settings.market_maker_rate
    feed_in_tariff_rate = None
    for node in scenario.root.children:
        if isinstance(node, sc.InfiniteBusNode) and node.energy_sell_rate is not None:
            market_maker_rate = node.energy_sell_rate
        if isinstance(node, sc.MarketMakerNode) and node.energy_rate is not None:
            market_maker_rate = node.energy_rate
    for node in scenario.root.children:
        if isinstance(node, sc.InfiniteBusNode):
            feed_in_tariff_rate = (
                node.energy_buy_rate if node.energy_buy_rate is not None else scenario.settings.feed_in_tariff
            )
    return market_maker_rate, feed_in_tariff_rate
