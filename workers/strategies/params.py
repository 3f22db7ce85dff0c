"""Shared pydantic base for strategy parameters, so every fleet.yaml typo or bad value fails at load time."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Smallest order energy the exchange accepts (EXCHANGE.md 6).
MIN_ORDER_ENERGY = 0.00002

Rate = Annotated[float, Field(ge=0, description="ct/kWh")]
Energy = Annotated[float, Field(ge=0, description="kWh")]


class StrategyParams(BaseModel):
    """Unknown keys, NaN/inf and mutation are rejected: params are validated once and shared."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OrderParams(StrategyParams):
    """Parameters of strategies that place bids/offers."""

    min_energy: float = Field(
        MIN_ORDER_ENERGY, ge=MIN_ORDER_ENERGY, description="kWh; smaller remaining energies get no order"
    )
