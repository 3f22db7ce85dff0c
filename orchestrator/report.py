"""A demo run's numbers: per-slot series from the exchange's ``trades.csv``, the summary and its table.

Prices are what buyers paid, grid fees included (pay-as-bid: the bid's rate); the fee is shown
beside them, since the operator's congestion fees move the price from slot to slot. Display
rounding is decided once here (prices 2 decimals, energy 3, percentages 1) for the table and
the HTML report; the files keep full precision.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gsy_e_sdk.wire.times import SLOT_FORMAT
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.engine import GridEngine
from gsy_local_exchange.grid import MarketArea
from gsy_local_exchange.scenario import Scenario

PRICE_DECIMALS = 2
ENERGY_DECIMALS = 3
PERCENT_DECIMALS = 1


@dataclass(frozen=True)
class ScenarioFacts:
    """What the report needs from the scenario, read through the exchange's own engine."""

    name: str  # the top market (self-sufficiency means nothing there: everything is inside it)
    start: datetime
    slot_length: timedelta
    slot_count: int
    market_maker_rate: float  # ct/kWh the market maker sells at, before grid fees
    feed_in_tariff_rate: float | None  # ct/kWh the grid buys at
    markets: tuple[str, ...]  # every market, parents first
    depth: dict[str, int]  # market -> 0 for the top market
    paths: dict[str, tuple[str, ...]]  # area -> the markets from the top down to it (a market includes itself)

    @property
    def slots(self) -> list[datetime]:
        return [self.start + index * self.slot_length for index in range(self.slot_count)]

    @property
    def first_level(self) -> list[str]:
        """The markets just below the top one (e.g. a community)."""
        return [market for market in self.markets if self.depth[market] == 1]


def scenario_facts(scenario: Scenario, start: datetime, duration: timedelta) -> ScenarioFacts:
    settings = scenario.settings
    clock = SimulationClock(start, settings.slot_length, settings.tick_length, duration)
    engine = GridEngine(scenario, clock)
    paths: dict[str, tuple[str, ...]] = {}
    for market in engine.markets:
        chain = []
        current: MarketArea | None = market
        while current is not None:
            chain.append(current.name)
            current = current.parent
        paths[market.name] = tuple(reversed(chain))
    for asset in engine.assets:
        paths[asset.name] = tuple(market.name for market in asset.path)
    return ScenarioFacts(
        name=engine.markets[0].name,
        start=start,
        slot_length=settings.slot_length,
        slot_count=clock.slot_count,
        market_maker_rate=engine.market_maker_rate,
        feed_in_tariff_rate=engine.feed_in_tariff_rate,
        markets=tuple(market.name for market in engine.markets),
        depth={market.name: market.depth for market in engine.markets},
        paths=paths,
    )


@dataclass
class SlotRow:
    """One slot's trading, from the exchange's trades."""

    slot: datetime
    trades: int = 0
    energy_kWh: float = 0.0
    paid_ct: float = 0.0  # buyers' money, grid fees included
    fees_ct: float = 0.0
    energy_by_market: dict[str, float] = field(default_factory=dict)  # where the trades met
    demand: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # market -> kWh bought in it
    demand_from_inside: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # of it, sold there

    @property
    def buyer_price(self) -> float | None:
        """Energy-weighted ct/kWh buyers paid, grid fees included."""
        return self.paid_ct / self.energy_kWh if self.energy_kWh else None

    @property
    def grid_fee(self) -> float | None:
        """Energy-weighted grid fees in ct/kWh (the sum over each trade's path)."""
        return self.fees_ct / self.energy_kWh if self.energy_kWh else None

    def self_sufficiency(self, market: str) -> float | None:
        """Percent of the energy bought in ``market`` that was also sold there (the exchange's KPI,
        over this slot only); None when nothing was bought there."""
        demand = self.demand.get(market, 0.0)
        return 100 * self.demand_from_inside.get(market, 0.0) / demand if demand else None


def per_slot(trades_csv: Path, facts: ScenarioFacts) -> list[SlotRow]:
    """A row for every slot of the run, those without trades included."""
    rows = {slot.strftime(SLOT_FORMAT): SlotRow(slot) for slot in facts.slots}
    with trades_csv.open() as handle:
        for trade in csv.DictReader(handle):
            row = rows.get(trade["slot"])
            if row is None:  # a slot outside the run's: not this run's file
                raise ValueError(f"{trades_csv}: slot {trade['slot']} is not one of the run's slots")
            energy = float(trade["energy_kWh"])
            row.trades += 1
            row.energy_kWh += energy
            row.paid_ct += energy * float(trade["buyer_rate_ct_per_kWh"])
            row.fees_ct += float(trade["grid_fees_ct"])
            meeting = trade["market"]
            row.energy_by_market[meeting] = row.energy_by_market.get(meeting, 0.0) + energy
            # As the exchange's KPI: a market's demand is what its buyers bought; it came from
            # inside when the trade met in that market or below it.
            inside = set(facts.paths.get(meeting, ()))
            for market in facts.paths.get(trade["buyer"], ()):
                row.demand[market] += energy
                if market in inside:
                    row.demand_from_inside[market] += energy
    return list(rows.values())


def slot_records(slots: list[SlotRow], facts: ScenarioFacts) -> list[dict[str, Any]]:
    """``slots.csv`` rows: totals, energy per market where the trades met, self-sufficiency per market."""
    below_top = [market for market in facts.markets if facts.depth[market] > 0]
    records = []
    for row in slots:
        record: dict[str, Any] = {
            "slot": row.slot.strftime(SLOT_FORMAT),
            "trades": row.trades,
            "energy_kWh": round(row.energy_kWh, 6),
            "buyer_price_ct_per_kWh": _round(row.buyer_price, 4),
            "grid_fee_ct_per_kWh": _round(row.grid_fee, 4),
        }
        for market in facts.markets:
            record[f"energy_kWh[{market}]"] = round(row.energy_by_market.get(market, 0.0), 6)
        for market in below_top:
            record[f"self_sufficiency_percent[{market}]"] = _round(row.self_sufficiency(market), 2)
        records.append(record)
    return records


def _round(value: float | None, decimals: int) -> float | None:
    return round(value, decimals) if value is not None else None


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(round(fraction * (len(ordered) - 1)), len(ordered) - 1)]


def build_summary(
    exchange_summary: dict[str, Any],
    latencies: dict[str, list[float]],
    counters: dict[str, int],
    wall_seconds: float,
    facts: ScenarioFacts,
) -> dict[str, Any]:
    """The run's summary (``summary.json``): the scenario, the exchange's own summary and the fleet's part."""
    return {
        "wall_seconds": round(wall_seconds, 1),
        "scenario": {
            "name": facts.name,
            "start": facts.start.strftime(SLOT_FORMAT),
            "slot_minutes": facts.slot_length.total_seconds() / 60,
            "slots": facts.slot_count,
            "market_maker_rate_ct_per_kWh": facts.market_maker_rate,
            "feed_in_tariff_ct_per_kWh": facts.feed_in_tariff_rate,
        },
        "exchange": exchange_summary,
        **_fleet_part(latencies, counters),
    }


def fleet_summary(
    latencies: dict[str, list[float]], counters: dict[str, int], wall_seconds: float, slots: list[str]
) -> dict[str, Any]:
    """What the fleet knows of a run on an exchange started elsewhere, whose trades it never sees
    whole: the slots it took part in and its own part (no ``scenario``, no ``exchange``)."""
    return {
        "wall_seconds": round(wall_seconds, 1),
        "slots": {"seen": len(slots), "first": slots[0] if slots else None, "last": slots[-1] if slots else None},
        **_fleet_part(latencies, counters),
    }


def _fleet_part(latencies: dict[str, list[float]], counters: dict[str, int]) -> dict[str, Any]:
    """``shards`` and ``counters`` of a summary.

    Per shard: ``tasks`` are Celery messages (each carries the shard's slices of one burst of
    events), ``slices`` the slice batches the exchange answered, whose latencies follow.
    ``trade_sides_seen`` is what the fleet's trade events listed: one entry per fleet asset in a
    trade, so a trade between two fleet assets counts twice; ``exchange.trades`` counts trades.
    """
    fleet = dict(counters)
    fleet["trade_sides_seen"] = fleet.pop("trades", 0)
    shards = {
        shard: {
            "tasks": counters.get(f"tasks_{shard}", 0),
            "slices": len(values),
            "p50_ms": _ms(percentile(values, 0.5)),
            "p99_ms": _ms(percentile(values, 0.99)),
            "mean_ms": _ms(statistics.fmean(values) if values else None),
        }
        for shard, values in sorted(latencies.items())
    }
    return {"shards": shards, "counters": fleet}


def _ms(seconds: float | None) -> float | None:
    return round(1000 * seconds, 1) if seconds is not None else None


def number(value: float | None, decimals: int) -> str:
    """A display number, or "-" when there is none."""
    return "-" if value is None else f"{value:.{decimals}f}"


MARKET_COLUMNS = ("market", "trades", "kWh", "avg ct/kWh", "self-suff %")


def market_rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    """The markets table as display strings, the all-trades row last. Self-sufficiency is "-" for
    the top market, where every seller is inside."""
    exchange = summary["exchange"]
    top = summary["scenario"]["name"]
    rows: list[tuple[str, ...]] = [
        (
            name,
            str(row["trades"]),
            number(row["energy_traded_kWh"], ENERGY_DECIMALS),
            number(row["average_price_ct_per_kWh"], PRICE_DECIMALS),
            "-" if name == top else number(row.get("self_sufficiency_percent"), PERCENT_DECIMALS),
        )
        for name, row in exchange["markets"].items()
    ]
    rows.append(
        (
            "all trades (buyer prices)",
            str(exchange["trades"]),
            number(exchange["energy_traded_kWh"], ENERGY_DECIMALS),
            number(exchange["average_price_ct_per_kWh"], PRICE_DECIMALS),
            "",
        )
    )
    return rows


SHARD_COLUMNS = ("shard", "tasks", "slices", "p50 ms", "p99 ms")
SHARD_NOTE = (
    "tasks: Celery messages; slices: aggregator slices they carried, answered by the exchange; "
    "latency per slice: event received -> batch answered"
)


def shard_rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            shard,
            str(row["tasks"]),
            str(row["slices"]),
            number(row["p50_ms"], 1),
            number(row["p99_ms"], 1),
        )
        for shard, row in summary["shards"].items()
    ]


def rejection_line(summary: dict[str, Any]) -> str:
    """``rejected: N (a reason, b reason)`` from the exchange's records of refused commands.

    The exchange's ``summary.json`` key ``rejections`` ({reason: count}) gives the reasons; a run
    of an exchange that does not record them shows the fleet's count of rejected answers.
    """
    reasons = summary.get("exchange", {}).get("rejections")
    if isinstance(reasons, dict):
        total = sum(reasons.values())
        ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        detail = ", ".join(f"{count} {reason}" for reason, count in ordered if count)
        return f"rejected: {total}" + (f" ({detail})" if detail else "")
    rejected = summary["counters"].get("commands_rejected", 0)
    if not rejected:
        return "rejected: 0"
    return f"rejected: {rejected} (reasons not recorded by the exchange; see the dispatcher's log)"


def fleet_lines(summary: dict[str, Any]) -> list[str]:
    counters = summary["counters"]
    exchange = summary.get("exchange")
    trades = f"; the exchange's trades: {exchange['trades']}" if exchange else ""
    return [
        f"commands: {counters.get('commands_submitted', 0)} submitted, {counters.get('commands_accepted', 0)} accepted",
        rejection_line(summary),
        f"trade sides seen by the fleet: {counters.get('trade_sides_seen', 0)} "
        f"(one per fleet asset in a trade{trades})",
        f"assets skipped {counters.get('assets_skipped', 0)}; missed events {counters.get('missed_events', 0)}; "
        f"wall time {summary['wall_seconds']} s",
    ]


def _text_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, each as wide as its widest cell."""
    widths = [max([len(column), *(len(row[index]) for row in rows)]) for index, column in enumerate(columns)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            [cells[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))]
        ).rstrip()

    return [line(columns), *(line(row) for row in rows)]


def render_table(summary: dict[str, Any]) -> str:
    """The markets (when the summary has the exchange's), the shards and the fleet's lines."""
    lines = [*_text_table(MARKET_COLUMNS, market_rows(summary)), ""] if "exchange" in summary else []
    lines += [*_text_table(SHARD_COLUMNS, shard_rows(summary)), f"  ({SHARD_NOTE})", ""]
    lines += fleet_lines(summary)
    return "\n".join(lines)


def write_data(directory: Path, summary: dict[str, Any], records: list[dict[str, Any]]) -> list[Path]:
    """``summary.json`` and ``slots.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2))
    csv_path = directory / "slots.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]) if records else ["slot"])
        writer.writeheader()
        writer.writerows(records)
    return [json_path, csv_path]
