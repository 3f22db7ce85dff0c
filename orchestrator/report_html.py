"""``results/report.html``: the demo's summary tables and plot in one file a browser opens offline.

Everything is inline (CSS, the plot as a base64 PNG): no script, no network fetch. The numbers
and their rounding come from ``orchestrator.report``, so the page and the terminal table agree.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from orchestrator.report import (
    ENERGY_DECIMALS,
    MARKET_COLUMNS,
    PERCENT_DECIMALS,
    PRICE_DECIMALS,
    SHARD_COLUMNS,
    SHARD_NOTE,
    ScenarioFacts,
    SlotRow,
    fleet_lines,
    market_rows,
    number,
    shard_rows,
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1250px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.9rem; }
"""


def _table(table_id: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if index else ''}>{escape(cell)}</td>" for index, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _slot_rows(slots: list[SlotRow], facts: ScenarioFacts) -> list[tuple[str, ...]]:
    return [
        (
            row.slot.strftime("%H:%M"),
            str(row.trades),
            number(row.energy_kWh, ENERGY_DECIMALS),
            number(row.buyer_price, PRICE_DECIMALS),
            number(row.grid_fee, PRICE_DECIMALS),
            *(number(row.self_sufficiency(market), PERCENT_DECIMALS) for market in facts.first_level),
        )
        for row in slots
    ]


def render_report(
    summary: dict[str, Any], slots: list[SlotRow], facts: ScenarioFacts, plot_png: bytes, files: list[str]
) -> str:
    scenario = summary["scenario"]
    title = f"Fleet run: {scenario['name']}, {facts.start.date().isoformat()} (UTC)"
    feed_in = scenario["feed_in_tariff_ct_per_kWh"]
    rates = f"The market maker sells at {scenario['market_maker_rate_ct_per_kWh']:g} ct/kWh before grid fees" + (
        f"; the grid buys at the feed-in tariff of {feed_in:g} ct/kWh." if feed_in is not None else "."
    )
    slot_columns = (
        "slot",
        "trades",
        "kWh",
        "buyer ct/kWh",
        "grid fee ct/kWh",
        *(f"self-suff % {market}" for market in facts.first_level),
    )
    plot = base64.b64encode(plot_png).decode()
    fleet = "".join(f"<li>{escape(line)}</li>" for line in fleet_lines(summary))
    listed = "".join(f"<li><code>{escape(name)}</code></li>" for name in files)
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p>{scenario["slots"]} slots of {scenario["slot_minutes"]:g} minutes. Prices are what buyers paid,
grid fees included; the average per market is the rate recorded in that market. {escape(rates)}</p>
<h2>Markets</h2>
{_table("markets", MARKET_COLUMNS, market_rows(summary))}
<p class="note">self-suff %: share of the energy bought in a market that was sold inside it too
(not shown for the top market, where every seller is inside).</p>
<h2>Per slot</h2>
<img id="plot" alt="Buyer prices with grid fees, energy per market and self-sufficiency per slot"
 src="data:image/png;base64,{plot}">
<details><summary>Every slot as a table</summary>
{_table("slots", slot_columns, _slot_rows(slots, facts))}
</details>
<h2>Fleet</h2>
<ul id="fleet">{fleet}</ul>
{_table("shards", SHARD_COLUMNS, shard_rows(summary))}
<p class="note">{escape(SHARD_NOTE)}</p>
<h2>Files</h2>
<ul id="files">{listed}</ul>
</body>
</html>
"""
