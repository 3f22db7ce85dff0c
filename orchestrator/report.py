"""A fleet run's summary: exchange results plus the fleet's own metrics, as table, files and plot."""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(round(fraction * (len(ordered) - 1)), len(ordered) - 1)]


def per_slot(trades_csv: Path) -> list[dict[str, Any]]:
    """Energy traded, trades and the energy-weighted buyer price per slot, from ``trades.csv``."""
    slots: dict[str, dict[str, float]] = defaultdict(lambda: {"trades": 0, "energy": 0.0, "paid": 0.0})
    with trades_csv.open() as handle:
        for row in csv.DictReader(handle):
            energy = float(row["energy_kWh"])
            slot = slots[row["slot"]]
            slot["trades"] += 1
            slot["energy"] += energy
            slot["paid"] += energy * float(row["buyer_rate_ct_per_kWh"])
    return [
        {
            "slot": slot,
            "trades": int(values["trades"]),
            "energy_kWh": round(values["energy"], 6),
            "average_price_ct_per_kWh": round(values["paid"] / values["energy"], 4) if values["energy"] else None,
        }
        for slot, values in sorted(slots.items())
    ]


def build_summary(
    exchange_summary: dict, latencies: dict[str, list[float]], counters: dict[str, int], wall_seconds: float
) -> dict[str, Any]:
    shards = {
        shard: {
            "tasks": len(values),
            "p50_ms": _ms(percentile(values, 0.5)),
            "p99_ms": _ms(percentile(values, 0.99)),
            "mean_ms": _ms(statistics.fmean(values) if values else None),
        }
        for shard, values in sorted(latencies.items())
    }
    return {
        "wall_seconds": round(wall_seconds, 1),
        "exchange": exchange_summary,
        "shards": shards,
        "counters": counters,
    }


def _ms(seconds: float | None) -> float | None:
    return round(1000 * seconds, 1) if seconds is not None else None


def render_table(summary: dict[str, Any]) -> str:
    exchange = summary["exchange"]
    lines = [f"{'market':<28} {'trades':>7} {'kWh':>10} {'avg ct/kWh':>11} {'self-suff %':>12}"]
    for name, row in exchange["markets"].items():
        average = row["average_price_ct_per_kWh"]
        sufficiency = row.get("self_sufficiency_percent")
        lines.append(
            f"{name[:28]:<28} {row['trades']:>7} {row['energy_traded_kWh']:>10.3f} "
            f"{average if average is not None else '-':>11} "
            f"{sufficiency if sufficiency is not None else '-':>12}"
        )
    lines.append(
        f"{'all trades (buyer prices)':<28} {exchange['trades']:>7} {exchange['energy_traded_kWh']:>10.3f} "
        f"{exchange['average_price_ct_per_kWh'] or '-':>11}"
    )
    lines.append("")
    lines.append(
        f"{'shard':<10} {'tasks':>7} {'p50 ms':>8} {'p99 ms':>8}   (event received -> exchange answered the batch)"
    )
    for shard, row in summary["shards"].items():
        lines.append(f"{shard:<10} {row['tasks']:>7} {row['p50_ms']!s:>8} {row['p99_ms']!s:>8}")
    counters = summary["counters"]
    lines.append("")
    lines.append(
        "commands submitted {submitted}, accepted {accepted}, rejected {rejected}; "
        "assets skipped {skipped}; missed events {missed}; wall time {wall} s".format(
            submitted=counters.get("commands_submitted", 0),
            accepted=counters.get("commands_accepted", 0),
            rejected=counters.get("commands_rejected", 0),
            skipped=counters.get("assets_skipped", 0),
            missed=counters.get("missed_events", 0),
            wall=summary["wall_seconds"],
        )
    )
    return "\n".join(lines)


def write_outputs(directory: Path, summary: dict[str, Any], slots: list[dict[str, Any]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2))
    csv_path = directory / "slots.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["slot", "trades", "energy_kWh", "average_price_ct_per_kWh"])
        writer.writeheader()
        writer.writerows(slots)
    return [json_path, csv_path, plot_slots(slots, directory / "prices_and_energy.png")]


def plot_slots(slots: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib  # noqa: PLC0415 - only the demo needs plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - only after the backend is chosen

    labels = [row["slot"][11:] for row in slots]
    figure, (prices, energy) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    prices.plot(labels, [row["average_price_ct_per_kWh"] for row in slots], marker=".", color="tab:red")
    prices.set_ylabel("avg price (ct/kWh)")
    prices.grid(alpha=0.3)
    energy.bar(labels, [row["energy_kWh"] for row in slots], color="tab:blue")
    energy.set_ylabel("energy traded (kWh)")
    energy.set_xlabel("slot (UTC)")
    energy.set_xticks(range(0, len(labels), max(len(labels) // 12, 1)))
    figure.suptitle("Prices and traded energy per slot")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
