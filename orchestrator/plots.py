"""The demo's plot: buyer prices beside the grid fees in them and the scenario's reference rates,
energy per market where trades met, and self-sufficiency, slot by slot over the run.

The fees are drawn because the grid operator's congestion fees move the buyer price within a
day: without them a price step looks like a bug. Built on a bare ``Figure`` (no pyplot), so no
global backend state is touched.
"""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta
from pathlib import Path

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from orchestrator.report import ScenarioFacts, SlotRow

MAX_TICKS = 13


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def hour_interval(span: timedelta) -> int:
    """Hours between two labelled ticks: every full hour while that gives at most ``MAX_TICKS``."""
    hours = span.total_seconds() / 3600
    return max(1, math.ceil(hours / (MAX_TICKS - 1)))


def _date_range(facts: ScenarioFacts) -> str:
    first = facts.start.date()
    last = (facts.start + facts.slot_count * facts.slot_length - timedelta(microseconds=1)).date()
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"


def build_figure(slots: list[SlotRow], facts: ScenarioFacts) -> Figure:
    figure = Figure(figsize=(12, 10), layout="constrained")
    prices, energy, sufficiency = figure.subplots(3, 1, sharex=True, height_ratios=[3, 2, 2])
    middles = [row.slot + facts.slot_length / 2 for row in slots]
    _prices(prices, slots, middles, facts)
    _energy(energy, slots, facts)
    _sufficiency(sufficiency, slots, middles, facts)
    end = facts.start + facts.slot_count * facts.slot_length
    sufficiency.set_xlim(facts.start, end)
    sufficiency.xaxis.set_major_locator(mdates.HourLocator(interval=hour_interval(end - facts.start)))
    sufficiency.xaxis.set_minor_locator(mdates.HourLocator())
    multi_day = end - facts.start > timedelta(days=1)
    sufficiency.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M" if multi_day else "%H:%M"))
    minutes = round(facts.slot_length.total_seconds() / 60)
    sufficiency.set_xlabel(f"time (UTC), {minutes}-minute slots")
    figure.suptitle(
        f"{_date_range(facts)} (UTC), grid {facts.name!r}: buyer prices with grid fees, energy and self-sufficiency"
    )
    return figure


def _prices(axes: Axes, slots: list[SlotRow], middles: list[datetime], facts: ScenarioFacts) -> None:
    axes.plot(
        middles,  # type: ignore[arg-type]  # matplotlib takes datetimes
        [_or_nan(row.buyer_price) for row in slots],
        marker=".",
        color="tab:red",
        label="buyer price, grid fees included (average per slot)",
    )
    axes.plot(
        middles,  # type: ignore[arg-type]
        [_or_nan(row.grid_fee) for row in slots],
        marker=".",
        color="tab:orange",
        label="grid fees in it (all markets on the trade's path)",
    )
    axes.axhline(
        facts.market_maker_rate,
        color="black",
        linestyle="--",
        label=f"market maker rate {facts.market_maker_rate:g} ct/kWh (before grid fees)",
    )
    if facts.feed_in_tariff_rate is not None:
        axes.axhline(
            facts.feed_in_tariff_rate,
            color="tab:green",
            linestyle=":",
            label=f"feed-in tariff {facts.feed_in_tariff_rate:g} ct/kWh",
        )
    highest = max(
        [facts.market_maker_rate, facts.feed_in_tariff_rate or 0.0, *(row.buyer_price or 0.0 for row in slots)]
    )
    axes.set_ylabel("ct/kWh")
    axes.set_ylim(0, 1.3 * highest or 1.0)  # room for the legend above the lines
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small", ncols=2)


def energy_groups(facts: ScenarioFacts) -> list[tuple[str, list[str]]]:
    """Bar segments: the top market and each market below it, deeper markets summed."""
    groups = [(market, [market]) for market in facts.markets if facts.depth[market] <= 1]
    deeper = [market for market in facts.markets if facts.depth[market] > 1]
    if deeper:
        groups.append((f"{len(deeper)} markets further down", deeper))
    return groups


def _energy(axes: Axes, slots: list[SlotRow], facts: ScenarioFacts) -> None:
    starts = [row.slot for row in slots]
    width = 0.9 * facts.slot_length / timedelta(days=1)  # matplotlib dates count days; a gap between slots
    bottom = [0.0] * len(slots)
    for label, markets in energy_groups(facts):
        heights = [sum(row.energy_by_market.get(market, 0.0) for market in markets) for row in slots]
        axes.bar(
            starts,  # type: ignore[arg-type]  # matplotlib takes datetimes
            heights,
            width=width,
            bottom=bottom,
            align="edge",
            label=f"met in {label}",
        )
        bottom = [low + height for low, height in zip(bottom, heights, strict=True)]
    axes.set_ylabel("energy traded (kWh)")
    axes.set_ylim(0, 1.3 * max(bottom, default=0.0) or 1.0)  # room for the legend above the bars
    axes.grid(alpha=0.3, axis="y")
    axes.legend(loc="upper left", fontsize="small", ncols=3)


def _sufficiency(axes: Axes, slots: list[SlotRow], middles: list[datetime], facts: ScenarioFacts) -> None:
    for market in facts.first_level:
        axes.plot(
            middles,  # type: ignore[arg-type]  # matplotlib takes datetimes
            [_or_nan(row.self_sufficiency(market)) for row in slots],
            marker=".",
            label=f"{market}: energy bought there that was sold there too",
        )
    axes.set_ylabel("self-sufficiency (%)")
    axes.set_ylim(0, 105)
    axes.grid(alpha=0.3)
    if facts.first_level:
        axes.legend(loc="best", fontsize="small")


def plot_png(slots: list[SlotRow], facts: ScenarioFacts) -> bytes:
    buffer = io.BytesIO()
    build_figure(slots, facts).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def write_plot(slots: list[SlotRow], facts: ScenarioFacts, path: Path) -> Path:
    path.write_bytes(plot_png(slots, facts))
    return path
