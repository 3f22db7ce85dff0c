"""`grid_fee`: a grid operator's dynamic constant fee (ct/kWh) for one market.

The fee follows a daily plan (or a flat base fee) and rises by a step after a congested slot.
A command is only sent when the fee must change, because every `grid_fees` command is a
request the exchange has to answer (REDIS.md 6.5) and a new fee only applies from the next slot.
"""

from __future__ import annotations

from pydantic import Field, PrivateAttr, model_validator

from workers.strategies.base import (
    Command,
    Decision,
    MarketNodeView,
    MarketView,
    NoState,
    RequestMarketStats,
    SetGridFee,
)
from workers.strategies.params import Energy, Rate, StrategyParams
from workers.strategies.schedule import DailySchedule, TimeOfDay, minute_of_day

FEE_DECIMALS = 8


class FeeEntry(StrategyParams):
    time: TimeOfDay
    fee: Rate


class GridFeeParams(StrategyParams):
    """`congestion_threshold_kWh` None disables the congestion step; `max_fee` None = no cap."""

    base_fee: Rate = 0.0
    congestion_threshold_kWh: Energy | None = None
    fee_step: Rate = 0.0
    max_fee: Rate | None = None
    schedule: tuple[FeeEntry, ...] | None = Field(None, description="daily plan replacing base_fee")
    request_stats: bool = False
    _plan: DailySchedule[float] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _build_plan(self) -> GridFeeParams:
        if self.max_fee is not None and self.base_fee > self.max_fee:
            raise ValueError(f"base_fee ({self.base_fee}) must be <= max_fee ({self.max_fee})")
        if self.schedule is not None:
            try:
                self._plan = DailySchedule.build((minute_of_day(entry.time), entry.fee) for entry in self.schedule)
            except ValueError as error:
                raise ValueError(f"schedule: {error}") from None
        return self

    def planned_fee(self, slot: str) -> float:
        """The fee before any congestion step, for the slot starting at `slot`."""
        return self.base_fee if self._plan is None else self._plan.at(slot)


def decide_market(node: MarketNodeView, market: MarketView, params: GridFeeParams, state: NoState) -> Decision[NoState]:
    """At each slot start, set the fee for the market's next slot if it differs from the configured one."""
    if market.event != "market":
        return Decision(commands=[], state=state)
    commands: list[Command] = [RequestMarketStats()] if params.request_stats else []
    fee = _target_fee(node, market, params)
    if node.current_market_fee is None or round(node.current_market_fee, FEE_DECIMALS) != fee:
        commands.append(SetGridFee(fee))
    return Decision(commands=commands, state=state)


def _target_fee(node: MarketNodeView, market: MarketView, params: GridFeeParams) -> float:
    fee = params.planned_fee(market.slot)
    traded = node.last_market_stats.get("total_traded_energy_kWh")
    threshold = params.congestion_threshold_kWh
    if threshold is not None and traded is not None and traded > threshold:
        fee += params.fee_step
    if params.max_fee is not None:
        fee = min(fee, params.max_fee)
    return round(fee, FEE_DECIMALS)
