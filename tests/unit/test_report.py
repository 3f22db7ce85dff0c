"""The demo's numbers, table, plot and HTML page from hand-written trades (no processes)."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gsy_local_exchange.scenario import load_scenario
from orchestrator.plots import build_figure, energy_groups, hour_interval, plot_png
from orchestrator.report import (
    build_summary,
    per_slot,
    rejection_line,
    render_table,
    scenario_facts,
    slot_records,
    write_data,
)
from orchestrator.report_html import render_report

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
START = datetime(2026, 6, 1)
TIMES = ["00:00", "00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45"]
COLUMNS = [
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


@pytest.fixture(scope="module")
def facts():
    return scenario_facts(load_scenario(COMMUNITY), START, timedelta(hours=2))


def write_trades(path: Path, trades: list[tuple[str, str, str, str, float, float, float]]) -> Path:
    """(slot time, meeting market, seller, buyer, kWh, buyer rate, fees in ct)"""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index, (at, market, seller, buyer, energy, rate, fees) in enumerate(trades):
            writer.writerow([f"2026-06-01T{at}", "", market, seller, buyer, energy, rate, 0, fees, f"t{index}"])
    return path


TRADES = [
    # 00:15: the load buys from the market maker (met in Grid, 8 ct fees/kWh) and from a PV of
    # its own community (met in Community, 4 ct/kWh).
    ("00:15", "Grid", "Market Maker", "Load 1 L13", 1.0, 30.0, 8.0),
    ("00:15", "Community", "PV 5 (10kW)", "Load 1 L13", 3.0, 20.0, 12.0),
    # 01:00: the PV sells to the grid (a feed-in: no demand inside the community).
    ("01:00", "Grid", "PV 5 (10kW)", "Market Maker", 2.0, 21.0, 8.0),
]


def test_scenario_facts_come_from_the_exchanges_grid(facts):
    assert facts.name == "Grid" and facts.first_level == ["Community"]
    assert (facts.market_maker_rate, facts.feed_in_tariff_rate) == (22, 21)
    assert facts.slot_count == 8 and facts.slots[0] == START and facts.slots[-1] == START + timedelta(minutes=105)
    assert facts.paths["Load 1 L13"] == ("Grid", "Community", "Family 2 children+PV")
    assert facts.paths["Community"] == ("Grid", "Community")
    assert facts.paths["Market Maker"] == ("Grid",)


def test_every_slot_gets_a_row_with_prices_fees_energy_and_self_sufficiency(facts, tmp_path):
    rows = per_slot(write_trades(tmp_path / "trades.csv", TRADES), facts)
    assert [row.slot for row in rows] == facts.slots
    first, traded = rows[0], rows[1]
    assert (first.trades, first.energy_kWh, first.buyer_price, first.grid_fee) == (0, 0.0, None, None)
    assert first.self_sufficiency("Community") is None
    assert traded.trades == 2 and traded.energy_kWh == 4.0
    assert traded.buyer_price == pytest.approx((30 + 60) / 4)
    assert traded.grid_fee == pytest.approx(20 / 4)
    assert traded.energy_by_market == {"Grid": 1.0, "Community": 3.0}
    assert traded.self_sufficiency("Community") == pytest.approx(75.0)
    assert traded.self_sufficiency("Family 2 children+PV") == pytest.approx(0.0)
    feed_in = rows[4]
    assert feed_in.energy_by_market == {"Grid": 2.0} and feed_in.self_sufficiency("Community") is None
    records = slot_records(rows, facts)
    assert records[1]["buyer_price_ct_per_kWh"] == 22.5 and records[1]["grid_fee_ct_per_kWh"] == 5.0
    assert records[1]["energy_kWh[Community]"] == 3.0 and records[1]["self_sufficiency_percent[Community]"] == 75.0
    assert "self_sufficiency_percent[Grid]" not in records[0]


def test_a_trade_outside_the_runs_slots_is_refused(facts, tmp_path):
    with pytest.raises(ValueError, match="05:00 is not one of the run's slots"):
        per_slot(
            write_trades(tmp_path / "trades.csv", [("05:00", "Grid", "Market Maker", "Load 1 L13", 1, 30, 8)]), facts
        )


def exchange_summary(**extra) -> dict:
    return {
        "trades": 2029,
        "energy_traded_kWh": 206.390525,
        "average_price_ct_per_kWh": 23.3977,
        "markets": {
            "Community": {
                "trades": 1438,
                "energy_traded_kWh": 157.2261,
                "average_price_ct_per_kWh": 22.1289,
                "self_sufficiency_percent": 86.34965555,
            },
            "Grid": {
                "trades": 531,
                "energy_traded_kWh": 94.852,
                "average_price_ct_per_kWh": 21.9295,
                "self_sufficiency_percent": 100.0,
            },
            "Young Couple": {
                "trades": 0,
                "energy_traded_kWh": 0.0,
                "average_price_ct_per_kWh": None,
                "self_sufficiency_percent": 0.0,
            },
        },
        **extra,
    }


COUNTERS = {
    "commands_submitted": 19339,
    "commands_accepted": 19330,
    "commands_rejected": 9,
    "tasks_shard-0": 960,
    "tasks_shard-1": 961,
    "trades": 3527,
}
LATENCIES = {"shard-0": [0.01, 0.02, 0.03], "shard-1": [0.015, 0.025]}


def test_the_table_rounds_labels_and_leaves_out_the_top_markets_self_sufficiency(facts):
    summary = build_summary(exchange_summary(), LATENCIES, COUNTERS, 42.06, facts)
    table = render_table(summary)
    lines = table.splitlines()
    assert lines[0].split("  ")[0].strip() == "market"
    assert next(line for line in lines if line.startswith("Community")).split()[1:] == [
        "1438",
        "157.226",
        "22.13",
        "86.3",
    ]
    assert next(line for line in lines if line.startswith("Grid")).split()[1:] == ["531", "94.852", "21.93", "-"]
    assert next(line for line in lines if line.startswith("Young Couple")).split()[2:] == ["0", "0.000", "-", "0.0"]
    assert next(line for line in lines if line.startswith("all trades")).split()[-3:] == ["2029", "206.391", "23.40"]
    assert next(line for line in lines if line.startswith("shard ")).split()[:3] == ["shard", "tasks", "slices"]
    assert next(line for line in lines if line.startswith("shard-1")).split()[1:3] == ["961", "2"]
    assert "trade sides seen by the fleet: 3527 (one per fleet asset in a trade; the exchange's trades: 2029)" in lines
    assert summary["shards"]["shard-0"] == {"tasks": 960, "slices": 3, "p50_ms": 20.0, "p99_ms": 30.0, "mean_ms": 20.0}
    assert "trades" not in summary["counters"] and summary["counters"]["trade_sides_seen"] == 3527
    assert summary["scenario"]["market_maker_rate_ct_per_kWh"] == 22 and summary["wall_seconds"] == 42.1


def test_the_rejection_line_gives_the_exchanges_reasons_or_says_they_are_missing(facts):
    recorded = build_summary(
        exchange_summary(rejections={"insufficient energy": 3, "slot closed": 9, "busy": 0}), {}, COUNTERS, 1, facts
    )
    assert rejection_line(recorded) == "rejected: 12 (9 slot closed, 3 insufficient energy)"
    unrecorded = build_summary(exchange_summary(), {}, COUNTERS, 1, facts)
    assert rejection_line(unrecorded).startswith("rejected: 9 (reasons not recorded by the exchange")
    assert rejection_line(build_summary(exchange_summary(), {}, {}, 1, facts)) == "rejected: 0"
    assert "rejected: 12 (9 slot closed" in render_table(recorded)


def test_summary_and_slots_files(facts, tmp_path):
    rows = per_slot(write_trades(tmp_path / "trades.csv", TRADES), facts)
    written = write_data(
        tmp_path / "out", build_summary(exchange_summary(), {}, {}, 1, facts), slot_records(rows, facts)
    )
    assert [path.name for path in written] == ["summary.json", "slots.csv"]
    with written[1].open() as handle:
        assert [row["slot"] for row in csv.DictReader(handle)] == [f"2026-06-01T{at}" for at in TIMES]


def test_hourly_ticks_stay_readable():
    assert hour_interval(timedelta(hours=2)) == 1
    assert hour_interval(timedelta(hours=12)) == 1
    assert hour_interval(timedelta(days=1)) == 2
    assert hour_interval(timedelta(days=3)) == 6


def test_the_plot_has_date_units_fees_reference_rates_and_hourly_ticks(facts, tmp_path):
    rows = per_slot(write_trades(tmp_path / "trades.csv", TRADES), facts)
    figure = build_figure(rows, facts)
    prices, energy, sufficiency = figure.axes
    figure.canvas.draw()
    assert "2026-06-01 (UTC)" in figure.get_suptitle()
    assert [axes.get_ylabel() for axes in figure.axes] == ["ct/kWh", "energy traded (kWh)", "self-sufficiency (%)"]
    assert sufficiency.get_xlabel() == "time (UTC), 15-minute slots"
    assert [label.get_text() for label in sufficiency.get_xticklabels()] == ["00:00", "01:00", "02:00"]
    price_labels = [text.get_text() for text in prices.get_legend().get_texts()]
    assert price_labels[:2] == [
        "buyer price, grid fees included (average per slot)",
        "grid fees in it (all markets on the trade's path)",
    ]
    assert "market maker rate 22 ct/kWh (before grid fees)" in price_labels
    assert "feed-in tariff 21 ct/kWh" in price_labels
    assert [text.get_text() for text in energy.get_legend().get_texts()] == [
        "met in Grid",
        "met in Community",
        "met in 9 markets further down",
    ]
    # The first slot has a bar (of height 0) at 00:00: no slot is left out.
    assert len(energy.patches) == 3 * len(facts.slots)
    assert [text.get_text() for text in sufficiency.get_legend().get_texts()] == [
        "Community: energy bought there that was sold there too"
    ]
    assert plot_png(rows, facts).startswith(b"\x89PNG")
    assert [label for label, _ in energy_groups(facts)] == ["Grid", "Community", "9 markets further down"]


def test_the_html_report_is_self_contained_and_escapes_names(facts, tmp_path):
    rows = per_slot(write_trades(tmp_path / "trades.csv", TRADES), facts)
    summary = build_summary(
        exchange_summary(markets={"<b>House</b>": exchange_summary()["markets"]["Community"]}),
        LATENCIES,
        COUNTERS,
        1,
        facts,
    )
    page = render_report(summary, rows, facts, b"\x89PNG-bytes", ["report.html", "logs/"])
    assert page.startswith("<!doctype html>")
    assert '<img id="plot"' in page and 'src="data:image/png;base64,iVBORy1ieXRlcw=="' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "&lt;b&gt;House&lt;/b&gt;" in page and "<b>House</b>" not in page
    assert page.count("<tr>") == (1 + 2) + (1 + 8) + (1 + 2)  # header and rows of markets, slots, shards
    assert "<li><code>logs/</code></li>" in page
    assert "<li>rejected: 9 (reasons not recorded by the exchange; see the dispatcher&#x27;s log)</li>" in page
