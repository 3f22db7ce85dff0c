"""Strategy registry: the names fleet.yaml may use, with their params model and decide function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pydantic

from workers.strategies import grid_fee, ramp, storage, time_of_use
from workers.strategies.base import ASSET_KINDS, MARKET, STORAGE


@dataclass(frozen=True)
class StrategySpec:
    name: str
    params_model: type[pydantic.BaseModel]  # validates the fleet.yaml parameters (extra="forbid")
    decide: Callable  # asset or market strategy
    targets: str  # "asset" or "market"
    kinds: frozenset[str]  # asset kinds it supports (empty for market strategies)

    def drives(self, kind: str) -> bool:
        """Whether this strategy can act for an asset of ``kind`` (or for a market, kind "Market")."""
        if kind == MARKET:
            return self.targets == "market"
        return self.targets == "asset" and (not self.kinds or kind in self.kinds)


STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        StrategySpec("price_ramp", ramp.PriceRampParams, ramp.decide, "asset", ASSET_KINDS),
        StrategySpec(
            "storage_arbitrage", storage.StorageArbitrageParams, storage.decide, "asset", frozenset({STORAGE})
        ),
        StrategySpec("time_of_use", time_of_use.TimeOfUseParams, time_of_use.decide, "asset", ASSET_KINDS),
        StrategySpec("grid_fee", grid_fee.GridFeeParams, grid_fee.decide_market, "market", frozenset()),
    )
}


def get_strategy(name: str) -> StrategySpec:
    """The spec registered as `name`; ValueError lists the known names (for fleet.yaml errors)."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(sorted(STRATEGIES))}") from None
