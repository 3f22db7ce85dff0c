"""Orders (sent as REDIS.md 6.2 commands by the worker) and how much energy an asset may put in them.

One place decides the energy limits per asset kind, so no strategy can over-commit an asset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from workers.strategies.base import BID, LOAD, OFFER, PV, SMART_METER, STORAGE, AssetView, PlaceOrder, WithdrawOrders

# asset_info keys whose sum is the most a replacing (replace_existing) order may carry.
# Storage reports energy_to_sell/energy_to_buy net of its open orders, which a replacement frees
# again (EXCHANGE.md 3.4); PV, load and smart meter report remaining energy regardless of orders.
_LIMIT_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    OFFER: {
        PV: ("available_energy_kWh",),
        SMART_METER: ("available_energy_kWh",),
        STORAGE: ("energy_to_sell", "energy_active_in_offers"),
    },
    BID: {
        LOAD: ("energy_requirement_kWh",),
        SMART_METER: ("energy_requirement_kWh",),
        STORAGE: ("energy_to_buy", "energy_active_in_bids"),
    },
}


def info_amount(info: Mapping[str, float], key: str) -> float:
    """A non-negative finite number from asset_info; missing/null/garbage counts as 0."""
    value = info.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return 0.0
    return max(float(value), 0.0)


def energy_limit(asset: AssetView, side: str) -> float:
    """Most energy a replacing order of `side` may carry; 0 for kinds that cannot take that side."""
    keys = _LIMIT_KEYS[side].get(asset.kind, ())
    return _floor8(sum(info_amount(asset.info, key) for key in keys))


def order_command(side: str, energy: float, rate: float, min_energy: float) -> PlaceOrder | None:
    """A replacing spot bid/offer with total price `rate * energy`, or None if there is nothing valid to send.

    Checks here what validating the order would (finite, energy > 0, price >= 0), so the worker
    sends it without validating it again: this runs for every asset on every event.
    """
    if not (math.isfinite(energy) and math.isfinite(rate)) or energy < min_energy:
        return None
    energy = _floor8(energy)
    price = round(max(rate, 0.0) * energy, 8)
    if energy <= 0 or not math.isfinite(price):
        return None
    return PlaceOrder(side, energy, price)


def delete_all_command(side: str) -> WithdrawOrders:
    """Deletes every open order of `side` (no id -> all, REDIS.md 6.2)."""
    return WithdrawOrders(side)


def asset_orders(asset: AssetView, sell_rate: float, buy_rate: float, min_energy: float) -> list[PlaceOrder]:
    """Offer all sellable and bid all buyable energy of the asset at the given rates."""
    orders = (
        order_command(OFFER, energy_limit(asset, OFFER), sell_rate, min_energy),
        order_command(BID, energy_limit(asset, BID), buy_rate, min_energy),
    )
    return [order for order in orders if order is not None]


def _floor8(energy: float) -> float:
    """Round to 8 decimals, but never up, so rounding can never push an order above its limit."""
    rounded = round(energy, 8)
    return rounded if rounded <= energy else round(rounded - 1e-8, 8)
