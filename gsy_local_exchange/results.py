"""Run results: per-market totals, a summary table, ``trades.csv`` and ``summary.json``."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gsy_e_sdk.wire.times import format_slot, format_trade_time

if TYPE_CHECKING:
    from _csv import Writer

    from gsy_local_exchange.simulation import Simulation, StepResult

# Every order a client placed (batch or direct), so audits can count orders per decision.
ORDER_COLUMNS = ["slot", "asset", "side", "transaction_id"]
TRADE_COLUMNS = [
    "slot",
    "time",
    "market",
    "seller",
    "buyer",
    "energy_kWh",
    "buyer_rate_ct_per_kWh",
    "seller_rate_ct_per_kWh",
    "grid_fees_ct",
    "trade_id",
]


@dataclass
class MarketTotals:
    trades: int = 0
    energy: float = 0.0
    value: float = 0.0  # cents at the rates recorded in this market
    fees: float = 0.0

    @property
    def average_rate(self) -> float | None:
        return self.value / self.energy if self.energy else None


@dataclass
class RunResults:
    directory: Path | None = None
    markets: dict[str, MarketTotals] = field(default_factory=dict)
    trade_count: int = 0
    energy: float = 0.0
    paid: float = 0.0
    ticks: int = 0
    slots: int = 0
    self_sufficiency: dict[str, float] = field(default_factory=dict)
    orders: int = 0
    event_latencies: dict[str, list[float]] = field(default_factory=lambda: {"market": [], "tick": []})
    events_fully_answered: int = 0
    strict_reference: bool = False
    spot_time_slot_orders: int = 0  # orders naming the spot slot (refused when strict_reference)
    rejections: dict[str, int] = field(default_factory=dict)  # commands answered with an error, by reason
    stop_reason: str | None = None  # why the run ended before its last slot
    _writer: Writer | None = None
    _file: TextIO | None = None
    _orders_writer: Writer | None = None
    _orders_file: TextIO | None = None

    def __post_init__(self) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = open(self.directory / "trades.csv", "w", newline="")
            self._writer = writer = csv.writer(self._file)
            writer.writerow(TRADE_COLUMNS)
            self._orders_file = open(self.directory / "orders.csv", "w", newline="")
            self._orders_writer = orders_writer = csv.writer(self._orders_file)
            orders_writer.writerow(ORDER_COLUMNS)

    def record(self, simulation: Simulation, result: StepResult) -> None:
        self.ticks += 1
        if result.finished or result.slot_started:
            self.self_sufficiency = {market.name: market.kpi.self_sufficiency for market in simulation.engine.markets}
        if result.slot_started:
            self.slots += 1
            self._flush()  # a killed exchange still leaves complete rows up to the last slot
        slot = format_slot(simulation.engine.slot_start)
        self.orders += len(result.client_orders)
        self.spot_time_slot_orders = simulation.executor.spot_time_slot_orders
        self.rejections = dict(simulation.executor.rejections)
        if self._orders_writer:
            self._orders_writer.writerows([slot, *order] for order in result.client_orders)
        for trade in result.trades:
            energy = trade.energy
            settlement = trade.settlement
            self.trade_count += 1
            self.energy += energy
            self.paid += settlement.buyer_rate * energy
            for market, fee, rate in zip(trade.path, settlement.market_fees, settlement.market_rates, strict=True):
                totals = self.markets.setdefault(market.name, MarketTotals())
                totals.trades += 1
                totals.energy += energy
                totals.value += rate * energy
                totals.fees += fee * energy
            if self._writer:
                self._writer.writerow(
                    [
                        slot,
                        format_trade_time(trade.time),
                        trade.meeting_market.name,
                        trade.seller.name,
                        trade.buyer.name,
                        round(energy, 8),
                        round(settlement.buyer_rate, 6),
                        round(settlement.seller_revenue_rate, 6),
                        round(sum(settlement.market_fees) * energy, 6),
                        trade.trade_id,
                    ]
                )

    def record_event_latency(self, seconds: float, answered: int, audience: int, kind: str = "tick") -> None:
        """Event published -> last batch received from the aggregators that answered it.

        ``kind`` is "market" for a slot's first event tick, else "tick".
        """
        self.event_latencies.setdefault(kind, []).append(seconds)
        self.events_fully_answered += answered == audience

    def _latency_summary(self) -> dict | None:
        everything = [value for values in self.event_latencies.values() for value in values]
        if not everything:
            return None
        return {
            **_percentiles(everything),
            "fully_answered": self.events_fully_answered,
            "by_event": {kind: _percentiles(values) for kind, values in self.event_latencies.items() if values},
            "series_ms": {
                kind: [round(1000 * value, 2) for value in values]
                for kind, values in self.event_latencies.items()
                if values
            },
        }

    def summary(self) -> dict:
        return {
            "slots": self.slots,
            "ticks": self.ticks,
            "client_orders": self.orders,
            "trades": self.trade_count,
            "energy_traded_kWh": round(self.energy, 6),
            "average_price_ct_per_kWh": round(self.paid / self.energy, 4) if self.energy else None,
            "event_to_last_batch": self._latency_summary(),
            "stopped_early": self.stop_reason is not None,
            "stop_reason": self.stop_reason,
            "strict_reference": self.strict_reference,
            "spot_orders_naming_time_slot": self.spot_time_slot_orders,
            "rejections": self.rejections,
            "markets": {
                name: {
                    "trades": totals.trades,
                    "energy_traded_kWh": round(totals.energy, 6),
                    "average_price_ct_per_kWh": (
                        round(totals.average_rate, 4) if totals.average_rate is not None else None
                    ),
                    "grid_fee_revenue_ct": round(totals.fees, 4),
                    "self_sufficiency_percent": self.self_sufficiency.get(name),
                }
                for name, totals in sorted(self.markets.items())
            },
        }

    def table(self) -> str:
        summary = self.summary()
        lines = [f"{'market':<32} {'trades':>8} {'kWh':>12} {'avg ct/kWh':>11}"]
        for name, row in summary["markets"].items():
            average = row["average_price_ct_per_kWh"]
            lines.append(
                f"{name[:32]:<32} {row['trades']:>8} {row['energy_traded_kWh']:>12.4f} "
                f"{average if average is not None else '-':>11}"
            )
        average = summary["average_price_ct_per_kWh"]
        lines.append(
            f"{'all trades (buyer prices)':<32} {summary['trades']:>8} {summary['energy_traded_kWh']:>12.4f} "
            f"{average if average is not None else '-':>11}"
        )
        return "\n".join(lines)

    def _flush(self) -> None:
        for handle in (self._file, self._orders_file):
            if handle:
                handle.flush()

    def close(self, stop_reason: str | None = None) -> None:
        """Close the CSV files and write summary.json; ``stop_reason`` when the run did not reach its end."""
        self.stop_reason = stop_reason
        for handle in (self._file, self._orders_file):
            if handle:
                handle.close()
        self._file = self._orders_file = None
        if self.directory is not None:
            (self.directory / "summary.json").write_text(json.dumps(self.summary(), indent=2))


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return round(1000 * ordered[min(int(fraction * (len(ordered) - 1) + 0.5), len(ordered) - 1)], 2)

    return {
        "events": len(ordered),
        "p50_ms": at(0.5),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": round(1000 * ordered[-1], 2),
    }
