"""Linear price ramps over a slot, and `price_ramp`: the template strategy of EXCHANGE.md 3.8.

Assets without a client trade like this in gsy-e, so a fleet using it behaves like unattended
assets while still being run (and measurable) by our workers. The ramp itself is the exchange's
(``gsy_e_sdk.wire.price_ramp``), stepped by the slot's completion.
"""

from __future__ import annotations

from pydantic import model_validator

from gsy_e_sdk.wire import price_ramp
from workers.strategies.base import AssetView, Decision, MarketView, NoState
from workers.strategies.orders import asset_orders
from workers.strategies.params import OrderParams, Rate

LAST_COMPLETION = 90  # the last tick event of a slot (REDIS.md 7.2)
FALLBACK_SELLING_RATE = 30.0  # gsy-e market maker rate, used while the event has none
FALLBACK_BUYING_RATE = 35.0  # gsy-e load final_buying_rate default


def ramp_rate(start: float, end: float, completion: int) -> float:
    """Rate at `completion` % of the slot: `start` at 0 %, `end` at the last tick event (90 %).

    Each percent of completion is one update of the exchange's ramp, which caps it at `end`.
    """
    return price_ramp.ramp_rate(start, end, max(completion, 0), LAST_COMPLETION)


class PriceRampParams(OrderParams):
    """None rates follow the market: the market maker rate plus path fees is the most a buyer
    pays for grid energy, the feed-in tariff the least a seller gets for it."""

    initial_selling_rate: Rate | None = None
    final_selling_rate: Rate | None = None
    initial_buying_rate: Rate = 0.0
    final_buying_rate: Rate | None = None

    @model_validator(mode="after")
    def _ramps_point_the_right_way(self) -> PriceRampParams:
        initial_sell, final_sell = self.initial_selling_rate, self.final_selling_rate
        if initial_sell is not None and final_sell is not None and initial_sell < final_sell:
            raise ValueError(
                f"initial_selling_rate ({initial_sell}) must be >= final_selling_rate "
                f"({final_sell}): selling rates ramp down"
            )
        if self.final_buying_rate is not None and self.initial_buying_rate > self.final_buying_rate:
            raise ValueError(
                f"initial_buying_rate ({self.initial_buying_rate}) must be <= final_buying_rate "
                f"({self.final_buying_rate}): buying rates ramp up"
            )
        return self


def grid_rate(market: MarketView, fallback: float) -> float:
    """What energy from the market maker costs at this asset, or `fallback` when the rate or a
    fee on the way is unknown (the first slot: markets report fees only once a slot finished)."""
    if market.market_maker_rate is None or market.fee_to_root is None:
        return fallback
    return market.market_maker_rate + market.fee_to_root


def decide(asset: AssetView, market: MarketView, params: PriceRampParams, state: NoState) -> Decision[NoState]:
    """Offer all sellable energy on the selling ramp and bid all needed energy on the buying ramp."""
    initial_sell, final_sell = _selling_ramp(market, params)
    initial_buy = params.initial_buying_rate
    final_buy = params.final_buying_rate
    if final_buy is None:  # a market-derived end must not turn the buying ramp downwards
        final_buy = max(grid_rate(market, FALLBACK_BUYING_RATE), initial_buy)
    commands = asset_orders(
        asset,
        sell_rate=ramp_rate(initial_sell, final_sell, market.completion),
        buy_rate=ramp_rate(initial_buy, final_buy, market.completion),
        min_energy=params.min_energy,
    )
    return Decision(commands=commands, state=state)


def _selling_ramp(market: MarketView, params: PriceRampParams) -> tuple[float, float]:
    """(initial, final) selling rates; when a market-derived end would turn the ramp upwards,
    the configured end wins."""
    final = params.final_selling_rate
    if final is None:
        final = market.feed_in_tariff_rate or 0.0
    initial = params.initial_selling_rate
    if initial is None:
        return max(grid_rate(market, FALLBACK_SELLING_RATE), final), final
    return initial, min(final, initial)
