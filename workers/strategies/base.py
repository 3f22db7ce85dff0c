"""Inputs and output of every strategy: read-only views of an event, its state and the decision.

Strategies are pure functions of these values so that any worker can run any asset on any tick
and the caller alone owns I/O (Redis state, batch commands).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

OFFER = "offer"
BID = "bid"
PV = "PV"
LOAD = "Load"
STORAGE = "Storage"
SMART_METER = "SmartMeter"
ASSET_KINDS = frozenset({PV, LOAD, STORAGE, SMART_METER})
MARKET = "Market"  # the kind a grid operator's strategy drives, in fleet files' ``strategies``


@dataclass(frozen=True)
class AssetView:
    uuid: str
    name: str
    kind: str  # "PV" | "Load" | "Storage" | "SmartMeter" (derived by caller from asset_info keys)
    info: Mapping[str, float]  # the asset's `asset_info` from the event's grid_tree (REDIS.md 7.3)


@dataclass(frozen=True)
class MarketView:
    event: str  # "market" (slot start) or "tick"
    slot: str  # "YYYY-MM-DDTHH:mm" (market_slot)
    completion: int  # slot completion percent: 0, 10, ..., 90
    market_maker_rate: float | None
    feed_in_tariff_rate: float | None
    # Sum of current grid fees (ct/kWh) from the asset to the root market; None while unknown.
    fee_to_root: float | None = None


@dataclass(frozen=True)
class MarketNodeView:  # for grid-operator strategies acting on a market
    uuid: str
    name: str
    last_market_stats: Mapping[str, float | None]  # min/max/avg/median_trade_rate, total_traded_energy_kWh
    current_market_fee: float | None
    last_market_fee: float | None


# Commands are slotted, not frozen, dataclasses: built for every asset on every event, and a
# frozen one costs four times as much to build.
@dataclass(slots=True)
class PlaceOrder:
    """Offer (``side`` "offer") or bid ``energy`` kWh for ``price`` cents in total on the spot
    market, replacing the asset's open orders of that side."""

    side: str
    energy: float  # > 0, finite
    price: float  # >= 0, finite


@dataclass(slots=True)
class WithdrawOrders:
    """Delete every open order of ``side``."""

    side: str


@dataclass(slots=True)
class SetGridFee:
    """The market's constant grid fee (ct/kWh) from its next slot on."""

    fee: float


@dataclass(slots=True)
class RequestMarketStats:
    """Ask for the market's DSO statistics of its last slot."""


# What a strategy asks for. The worker sends each as the protocol's typed command
# (``workers/commands.py``: the models the SDK builds its users' commands with).
Command = PlaceOrder | WithdrawOrders | SetGridFee | RequestMarketStats


class StrategyState(BaseModel):
    """What a strategy remembers of an asset between events, stored as JSON by the worker.

    Frozen (``decide`` returns a new one, its input stays as it was); keys it does not know are
    ignored, so a state stored by an older version still loads. Declared with the strategy in
    ``workers/strategies/__init__.py``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class NoState(StrategyState):
    """The state of a strategy that remembers nothing."""


State = TypeVar("State")


@dataclass
class Decision(Generic[State]):
    commands: Sequence[Command]
    state: State  # the asset's new state
