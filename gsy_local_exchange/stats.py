"""Per-market statistics of a slot and cumulative KPIs (EXCHANGE.md 8)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Bill:
    """Energy (kWh) and money (cents) on one side of a market's trades."""

    earned: float = 0.0
    spent: float = 0.0
    bought: float = 0.0
    sold: float = 0.0

    def to_wire(self) -> dict:
        """Money in euros, as the reference exchange reports bills."""
        return {
            "earned": round(self.earned / 100, 7),
            "spent": round(self.spent / 100, 7),
            "bought": round(self.bought, 7),
            "sold": round(self.sold, 7),
        }


@dataclass
class MarketSlotStats:
    """What happened in one market during one slot."""

    rates: list[float] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)
    fee_revenue: float = 0.0
    imported: float = 0.0
    exported: float = 0.0
    accumulated: Bill = field(default_factory=Bill)
    external: Bill = field(default_factory=Bill)

    def add_trade(self, rate: float, energy: float) -> None:
        self.rates.append(rate)
        self.energies.append(energy)

    @property
    def traded_energy(self) -> float:
        return sum(self.energies)

    def summary(self) -> dict:
        """``last_market_stats``: all null without trades."""
        if not self.rates:
            return {
                "min_trade_rate": None,
                "max_trade_rate": None,
                "avg_trade_rate": None,
                "median_trade_rate": None,
                "total_traded_energy_kWh": None,
            }
        return {
            "min_trade_rate": round(min(self.rates), 8),
            "max_trade_rate": round(max(self.rates), 8),
            "avg_trade_rate": round(statistics.fmean(self.rates), 8),
            "median_trade_rate": round(statistics.median(self.rates), 8),
            "total_traded_energy_kWh": round(self.traded_energy, 8),
        }

    def bill(self) -> dict:
        return {"accumulated_trades": self.accumulated.to_wire(), "external_trades": self.external.to_wire()}


@dataclass
class Kpi:
    """Cumulative self-sufficiency and self-consumption of a market's subtree."""

    demand: float = 0.0
    demand_from_inside: float = 0.0
    production: float = 0.0
    production_used_inside: float = 0.0

    @property
    def self_sufficiency(self) -> float:
        return round(100 * self.demand_from_inside / self.demand, 8) if self.demand else 0.0

    @property
    def self_consumption(self) -> float:
        return round(100 * self.production_used_inside / self.production, 8) if self.production else 0.0
