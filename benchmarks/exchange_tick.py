"""Per-tick cost of the local exchange engine at growing fleet sizes.

Runs the simulation in-process (no Redis) on generated scenarios, with every asset either left
to the built-in strategies or selected by N/100 aggregators (so each event tick also builds one
grid tree per aggregator), and prints a table plus JSON.

    python benchmarks/exchange_tick.py --assets 1000 10000 --slots 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.generate import generate_scenario
from gsy_local_exchange.scenario import parse_scenario
from gsy_local_exchange.simulation import Simulation


def build_simulation(
    assets: int, per_aggregator: int, slots: int, with_aggregators: bool, compact: bool = False
) -> Simulation:
    """A generated grid of ``assets`` in markets of ``per_aggregator``; with aggregators, one per
    market selecting all its assets (as the fleet benchmarks' fleets do). Also used by event_size.py."""
    scenario = parse_scenario(generate_scenario(assets, max(assets // per_aggregator, 1)))
    clock = SimulationClock(
        datetime(2026, 6, 1, 10), timedelta(minutes=15), timedelta(seconds=15), timedelta(minutes=15 * slots)
    )
    simulation = Simulation(scenario, clock, compact_tree=compact)
    if with_aggregators:
        markets = [m for m in simulation.engine.markets if m.parent is not None]
        for index, market in enumerate(markets):
            aggregator = f"00000000-0000-4000-8000-{index:012d}"
            simulation.registry.handle({"type": "CREATE", "name": market.name, "transaction_id": aggregator})
            for child in market.children:
                simulation.registry.handle(
                    {
                        "type": "SELECT",
                        "aggregator_uuid": aggregator,
                        "device_uuid": child.uuid,
                        "transaction_id": child.uuid,
                    }
                )
    return simulation


def measure(assets: int, slots: int, with_aggregators: bool) -> dict:
    simulation = build_simulation(assets, 100, slots, with_aggregators)
    durations, event_durations, payload_bytes = [], [], 0
    while not simulation.finished:
        started = time.perf_counter()
        result = simulation.step()
        elapsed = time.perf_counter() - started
        (event_durations if result.event_aggregators else durations).append(elapsed)
        payload_bytes += sum(len(payload) for _, payload in result.messages)
    every = durations + event_durations
    return {
        "assets": assets,
        "aggregators": len(simulation.registry.aggregators),
        "ticks": len(every),
        "tick_mean_ms": round(1000 * statistics.fmean(every), 3),
        "tick_p99_ms": round(1000 * sorted(every)[int(0.99 * (len(every) - 1))], 3),
        "event_tick_mean_ms": round(1000 * statistics.fmean(event_durations), 3) if event_durations else None,
        "plain_tick_mean_ms": round(1000 * statistics.fmean(durations), 3) if durations else None,
        "published_MB_per_slot": round(payload_bytes / slots / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "exchange_tick.json")
    args = parser.parse_args()
    rows = []
    for assets in args.assets:
        for with_aggregators in (False, True):
            row = measure(assets, args.slots, with_aggregators)
            row["mode"] = "aggregators" if with_aggregators else "templates"
            rows.append(row)
            print(
                f"{row['assets']:>7} assets {row['mode']:<11} {row['aggregators']:>4} aggs  "
                f"tick mean {row['tick_mean_ms']:>8} ms  p99 {row['tick_p99_ms']:>8} ms  "
                f"event tick {row['event_tick_mean_ms']} ms  plain {row['plain_tick_mean_ms']} ms  "
                f"{row['published_MB_per_slot']} MB/slot",
                flush=True,
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
