"""Template (reference) strategies: how assets no client controls trade (EXCHANGE.md 3.8).

Each update interval an asset re-posts its whole remaining energy one step further along its
price ramp (``gsy_e_sdk.wire.price_ramp``); infinite sources post once per slot.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

from gsy_e_sdk.wire.price_ramp import ramp_rate, update_index, updates_per_slot
from gsy_local_exchange import scenario as sc
from gsy_local_exchange.assets import ENERGY_TOLERANCE, InfiniteSource, TradingAsset
from gsy_local_exchange.orders import BID, OFFER

if TYPE_CHECKING:
    from gsy_local_exchange.engine import GridEngine


def run_templates(engine: GridEngine, controlled: set[str]) -> None:
    """Price updates of this tick for every asset not in ``controlled`` (uuids)."""
    tick = engine.tick
    tick_seconds = engine.clock.tick_length.total_seconds()
    now = engine.market_time()
    elapsed = tick * tick_seconds
    previous = (tick - 1) * tick_seconds
    slot_seconds = engine.clock.slot_length.total_seconds()
    for asset in engine.assets:
        if asset.uuid in controlled:
            continue
        if isinstance(asset, InfiniteSource):
            if tick == 0:
                _post_infinite(engine, asset, now)
            continue
        interval = asset.node.update_interval * 60
        updates = updates_per_slot(slot_seconds, interval)
        step = update_index(elapsed, interval, updates)
        if tick > 0 and step == update_index(previous, interval, updates):
            continue
        _reprice(engine, asset, step, updates, now)


def _post_infinite(engine: GridEngine, asset: InfiniteSource, now: datetime) -> None:
    sell, buy = asset.rates_at(engine.slot_start)
    if sell is not None:
        engine.place_order(asset, OFFER, asset.sellable(), sell, now)
    if buy is not None and buy > 0:
        engine.place_order(asset, BID, asset.buyable(), buy, now)


def _reprice(engine: GridEngine, asset: TradingAsset, step: int, updates: int, now: datetime) -> None:
    """Replace the asset's orders by orders of all its remaining energy at ramp step ``step``."""
    node = asset.node
    mmr = engine.market_maker_rate
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
        engine.remove_orders(asset, OFFER)
        energy = asset.sellable()
        if energy >= ENERGY_TOLERANCE:
            engine.place_order(asset, OFFER, energy, rate, now)
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
        engine.remove_orders(asset, BID)
        energy = asset.buyable()
        if energy >= ENERGY_TOLERANCE:
            engine.place_order(asset, BID, energy, rate, now)
