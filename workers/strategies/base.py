"""Inputs and output of every strategy: read-only views of an event and the resulting decision.

Strategies are pure functions of these values so that any worker can run any asset on any tick
and the caller alone owns I/O (Redis state, batch commands).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
    fee_to_root: float = (
        0.0  # sum of current grid fees (ct/kWh) on the path from the asset to the root market; 0 if unknown
    )


@dataclass(frozen=True)
class MarketNodeView:  # for grid-operator strategies acting on a market
    uuid: str
    name: str
    last_market_stats: Mapping[str, float | None]  # min/max/avg/median_trade_rate, total_traded_energy_kWh
    current_market_fee: float | None
    last_market_fee: float | None


@dataclass
class Decision:
    commands: list[dict]  # wire command objects (REDIS.md 6.2)
    state: dict  # new per-asset state (JSON-serializable; stored in Redis by the caller)
