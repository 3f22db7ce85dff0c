"""`storage_arbitrage`: charge on a low rate ramp, discharge on a high one, never at a loss.

The strategy only sees asset_info, so it infers its own purchases from how `used_storage` and
`energy_traded` moved since the last event and prices them at its last bid rate (pay-as-bid:
the buyer pays its bid rate; other matchings pay less, so the cost basis errs high, i.e. safe).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, model_validator

from workers.strategies.base import STORAGE, AssetView, Command, Decision, MarketView, PlaceOrder, StrategyState
from workers.strategies.orders import BID, OFFER, delete_all_command, energy_limit, info_amount, order_command
from workers.strategies.params import Energy, OrderParams, Rate
from workers.strategies.ramp import ramp_rate

NOISE_KWH = 1e-9  # below this, a change of reported energies is float noise, not a trade


class StorageArbitrageParams(OrderParams):
    """Defaults are gsy-e's storage template rates (EXCHANGE.md 3.4)."""

    buy_rate_start: Rate = 0.0
    buy_rate_end: Rate = 24.9
    sell_rate_start: Rate = 30.0
    sell_rate_end: Rate = 25.0
    margin: Rate = 0.0
    min_soc_kWh: Energy | None = None
    max_soc_kWh: Energy | None = None

    @model_validator(mode="after")
    def _rates_and_limits_are_consistent(self) -> StorageArbitrageParams:
        if self.buy_rate_start > self.buy_rate_end:
            raise ValueError(
                f"buy_rate_start ({self.buy_rate_start}) must be <= buy_rate_end "
                f"({self.buy_rate_end}): buying rates ramp up"
            )
        if self.sell_rate_start < self.sell_rate_end:
            raise ValueError(
                f"sell_rate_start ({self.sell_rate_start}) must be >= sell_rate_end "
                f"({self.sell_rate_end}): selling rates ramp down"
            )
        if self.buy_rate_end >= self.sell_rate_end:
            raise ValueError(
                f"buy_rate_end ({self.buy_rate_end}) must be < sell_rate_end "
                f"({self.sell_rate_end}): buying must stay cheaper than selling"
            )
        if self.min_soc_kWh is not None and self.max_soc_kWh is not None and self.min_soc_kWh > self.max_soc_kWh:
            raise ValueError(f"min_soc_kWh ({self.min_soc_kWh}) must be <= max_soc_kWh ({self.max_soc_kWh})")
        return self


class StorageState(StrategyState):
    """What the last event showed (to infer trades since) and the cost basis of the energy held."""

    slot: str | None = None  # of the last event
    used_storage: Energy | None = None  # None: no event seen yet
    energy_traded: Energy = 0.0  # in the last event's slot
    held_kWh: Energy = 0.0  # purchased energy still stored
    avg_purchase_rate: Rate = 0.0
    bid_rate: Rate | None = Field(None, description="rate of the last bid placed, what a purchase since cost")


def decide(
    asset: AssetView, market: MarketView, params: StorageArbitrageParams, state: StorageState
) -> Decision[StorageState]:
    """Offer and bid in one decision; withdraw a side whose SoC cap no longer allows an order."""
    if asset.kind != STORAGE:
        return Decision(commands=[], state=state)
    info = asset.info
    used = info_amount(info, "used_storage")
    bought, sold = _trades_since(state, info, market.slot)
    paid_rate = state.bid_rate
    held, avg_rate = _cost_basis(state, bought, sold, params.buy_rate_end if paid_rate is None else paid_rate)

    sell_energy = energy_limit(asset, OFFER)
    if params.min_soc_kWh is not None:
        sell_energy = min(sell_energy, used - params.min_soc_kWh)
    buy_energy = energy_limit(asset, BID)
    if params.max_soc_kWh is not None:
        buy_energy = min(buy_energy, params.max_soc_kWh - used)
    sell_rate = max(
        ramp_rate(params.sell_rate_start, params.sell_rate_end, market.completion), avg_rate + params.margin
    )
    buy_rate = ramp_rate(params.buy_rate_start, params.buy_rate_end, market.completion)
    offer = order_command(OFFER, sell_energy, sell_rate, params.min_energy)
    bid = order_command(BID, buy_energy, buy_rate, params.min_energy)

    new_state = StorageState(
        slot=market.slot,
        used_storage=used,
        energy_traded=info_amount(info, "energy_traded"),
        held_kWh=held,
        avg_purchase_rate=avg_rate,
        bid_rate=state.bid_rate if bid is None else buy_rate,
    )
    commands = _place_or_withdraw(OFFER, offer, info_amount(info, "energy_active_in_offers")) + _place_or_withdraw(
        BID, bid, info_amount(info, "energy_active_in_bids")
    )
    return Decision(commands=commands, state=new_state)


def _trades_since(state: StorageState, info: Mapping[str, float], slot: str) -> tuple[float, float]:
    """(bought, sold) kWh since the previous event. `used_storage` moves by bought - sold;
    within one slot `energy_traded` moves by bought + sold (it restarts every slot)."""
    if state.used_storage is None:
        return 0.0, 0.0
    net = info_amount(info, "used_storage") - state.used_storage
    gross = abs(net)
    if state.slot == slot:
        gross = max(info_amount(info, "energy_traded") - state.energy_traded, gross)
    return (gross + net) / 2, (gross - net) / 2


def _cost_basis(state: StorageState, bought: float, sold: float, paid_rate: float) -> tuple[float, float]:
    """(kWh of purchased energy still held, its average purchase rate); sales use it up first."""
    held = max(state.held_kWh - sold, 0.0)
    avg_rate = state.avg_purchase_rate if held > NOISE_KWH else 0.0
    if bought > NOISE_KWH:
        avg_rate = (held * avg_rate + bought * paid_rate) / (held + bought)
        held += bought
    return held, avg_rate


def _place_or_withdraw(side: str, order: PlaceOrder | None, open_energy: float) -> list[Command]:
    """The new order, or a delete of the side's open orders that the caps no longer allow."""
    if order is not None:
        return [order]
    return [delete_all_command(side)] if open_energy > 0 else []
