"""The events of aggregators (REDIS.md 7), written through ``gsy_e_sdk.wire.events``.

At the end of a tick every aggregator with devices gets at most one event of each kind, in the
order ``market``, ``tick``, ``finish``, ``trade``. Only market and tick events depend on the
aggregator owning assets. An aggregator's grid tree is serialised once per event tick and reused
by that tick's events and by trade events until the next event tick.
"""

from __future__ import annotations

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.events import (
    NONE_TEXT,
    FinishEvent,
    MarketEvent,
    TickEvent,
    TradeEntry,
    TradeEvent,
    encode_event,
)
from gsy_e_sdk.wire.times import format_completion, format_slot, format_trade_time
from gsy_local_exchange.aggregators import AggregatorRegistry
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.engine import GridEngine
from gsy_local_exchange.grid_tree import GridTreeBuilder
from gsy_local_exchange.outgoing import Outgoing
from gsy_local_exchange.trading import TradeRecord

_UNENCODED: dict = {}  # the grid_tree of event headers: each aggregator's tree is encoded on its own


class AggregatorEvents:
    def __init__(self, engine: GridEngine, registry: AggregatorRegistry, tree: GridTreeBuilder) -> None:
        self.engine = engine
        self.registry = registry
        self.tree = tree
        self._trees: dict[str, str] = {}  # aggregator uuid -> its last encoded grid tree

    def publish(self, tick: int, trades: list[TradeRecord], finishing: bool, messages: list[Outgoing]) -> set[str]:
        """Append the events of tick ``tick`` of the running slot to ``messages``; returns the
        aggregators that got a market or tick event."""
        engine = self.engine
        clock = engine.clock
        event_tick = clock.is_event_tick(tick)
        if event_tick:
            self.tree.refresh()
        header = {
            "feed_in_tariff_rate": engine.feed_in_tariff_rate,
            "market_maker_rate": engine.market_maker_rate,
            "simulation_id": None,
            "num_ticks": clock.num_ticks_field,
        }
        market = tick_event = None
        if tick == 0 or event_tick:
            slot = {
                "slot_completion": format_completion(clock.completion_percent(tick)),
                "market_slot": format_slot(engine.slot_start),
                "grid_tree": _UNENCODED,
                **header,
            }
            market = MarketEvent(**slot) if tick == 0 else None
            tick_event = TickEvent(**slot) if event_tick else None
        finish = FinishEvent(simulation_id=None, num_ticks=clock.num_ticks_field) if finishing else None
        entries = self._trade_entries(trades)
        informed: set[str] = set()
        for aggregator in list(self.registry.aggregators.values()):
            devices = aggregator.devices
            if not devices:
                continue
            channel = channels.aggregator_events(aggregator.uuid)
            slot_events: list[MarketEvent | TickEvent] = []
            if market is not None or tick_event is not None:
                has_assets = any(isinstance(engine.areas.get(device), Asset) for device in devices)
                if market is not None and (has_assets or engine.slot_index > 0):
                    slot_events.append(market)
                if tick_event is not None and has_assets:
                    slot_events.append(tick_event)
            if slot_events:
                self._trees[aggregator.uuid] = self.tree.tree_json(devices)
                informed.add(aggregator.uuid)
            tree = self._trees.get(aggregator.uuid)
            for event in slot_events:
                messages.append((channel, encode_event(event, tree)))
            if finish is not None:
                messages.append((channel, encode_event(finish)))
            trade_list = entries.get(aggregator.uuid)
            if trade_list:
                if tree is None:
                    tree = self._trees[aggregator.uuid] = self.tree.tree_json(devices)
                trade = TradeEvent(trade_list=trade_list, grid_tree=_UNENCODED, **header)
                messages.append((channel, encode_event(trade, tree)))
        return informed

    def _trade_entries(self, trades: list[TradeRecord]) -> dict[str, list[TradeEntry]]:
        """Per aggregator, its assets' sides of ``trades``."""
        grouped: dict[str, list[TradeEntry]] = {}
        owner = self.registry.owner
        first_slot = self.engine.slot_index == 0
        for trade in trades:
            for asset, is_seller in ((trade.seller, True), (trade.buyer, False)):
                aggregator_uuid = owner.get(asset.uuid)
                if aggregator_uuid is not None:
                    grouped.setdefault(aggregator_uuid, []).append(trade_entry(trade, asset, is_seller, first_slot))
        return grouped


def trade_entry(trade: TradeRecord, asset: Asset, is_seller: bool, first_slot: bool) -> TradeEntry:
    """``asset``'s side of ``trade`` (REDIS.md 7.4); the market's last fee is unknown in the first slot."""
    settlement = trade.settlement
    energy = trade.energy
    if is_seller:
        own_fee = trade.seller_fee
        price = (settlement.seller_revenue_rate + own_fee) * energy
    else:
        own_fee = trade.buyer_fee
        price = settlement.buyer_rate * energy
    return TradeEntry(
        asset_id=asset.uuid,
        trade_id=trade.trade_id,
        time=format_trade_time(trade.time),
        trade_price=round(price, 8),
        traded_energy=energy,
        total_fee=round(own_fee * energy, 8),
        local_market_fee=NONE_TEXT if first_slot else float(asset.market.fee_last),
        seller=asset.name if is_seller else "anonymous",
        buyer="anonymous" if is_seller else asset.name,
        seller_origin=trade.seller.name,
        buyer_origin=trade.buyer.name,
        bid_id=trade.bid_id,
        offer_id=trade.offer_id,
        residual_bid_id=trade.residual_bid_id or NONE_TEXT,
        residual_offer_id=trade.residual_offer_id or NONE_TEXT,
    )
