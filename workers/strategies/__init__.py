"""Strategy registry: the names fleet.yaml may use, with their params model, decide function and state model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import pydantic

from workers.strategies import grid_fee, ramp, storage, time_of_use
from workers.strategies.base import (
    ASSET_KINDS,
    MARKET,
    STORAGE,
    NoState,
    StrategyState,
)


@dataclass(frozen=True)
class StrategySpec:
    name: str
    params_model: type[pydantic.BaseModel]  # validates the fleet.yaml parameters (extra="forbid")
    decide: Callable  # (view, market, params, state: state_model) -> Decision[state_model]
    targets: str  # "asset" or "market"
    kinds: frozenset[str]  # asset kinds it supports (empty for market strategies)
    state_model: type[StrategyState] = NoState  # what decide remembers between events, stored as JSON

    def drives(self, kind: str) -> bool:
        """Whether this strategy can act for an asset of ``kind`` (or for a market, kind "Market")."""
        if kind == MARKET:
            return self.targets == "market"
        return self.targets == "asset" and (not self.kinds or kind in self.kinds)

    @cached_property
    def fresh_state(self) -> StrategyState:
        """The state before the first event (frozen, so one instance serves every asset)."""
        return self.state_model()

    @cached_property
    def keeps_state(self) -> bool:
        """False for a state without fields (``NoState``): nothing to read or store."""
        return bool(self.state_model.model_fields)


STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        StrategySpec("price_ramp", ramp.PriceRampParams, ramp.decide, "asset", ASSET_KINDS),
        StrategySpec(
            "storage_arbitrage",
            storage.StorageArbitrageParams,
            storage.decide,
            "asset",
            frozenset({STORAGE}),
            storage.StorageState,
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
