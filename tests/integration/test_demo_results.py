"""What ``gsy-e-sdk demo`` prints and writes, read as a new user reads it (issue 16).

One two-hour demo on the test Redis (the local exchange, the dispatcher and two Celery workers):
the table's rounding and labels agree with the files, every file written is listed, every slot
is in ``slots.csv``; bad options end with one ``Error:`` line and exit code 2 before anything
starts.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FIRST_SLOTS = ["00:00", "00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45"]


def demo(*args: str, cwd: Path, redis_url: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gsy_e_sdk", "demo", *args],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory, redis_url) -> dict:
    tmp = tmp_path_factory.mktemp("demo")
    results = tmp / "results"
    done = demo("--duration", "2h", "--results", str(results), cwd=tmp, redis_url=redis_url)
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "stdout": done.stdout,
        "results": results,
        "summary": json.loads((results / "summary.json").read_text()),
        "exchange": json.loads((results / "exchange" / "summary.json").read_text()),
    }


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Market rows of the printed table: name -> the four numeric cells."""
    rows = {}
    lines = stdout.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("market "))
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        match = re.match(r"^(.+?)\s{2,}(\d+)\s+(\S+)\s+(\S+)(?:\s+(\S+))?$", line)
        assert match, line
        rows[match[1]] = [cell for cell in match.groups()[1:] if cell is not None]
    return rows


def test_the_table_rounds_consistently_and_has_no_self_sufficiency_for_the_top_market(run):
    rows = table_rows(run["stdout"])
    assert set(rows) == {*run["exchange"]["markets"], "all trades (buyer prices)"}
    for name, (_trades, kwh, price, *sufficiency) in rows.items():
        assert re.fullmatch(r"\d+\.\d{3}", kwh), (name, kwh)
        assert re.fullmatch(r"\d+\.\d{2}|-", price), (name, price)
        if name not in ("Grid", "all trades (buyer prices)"):
            assert re.fullmatch(r"\d+\.\d", sufficiency[0]), (name, sufficiency)
    assert rows["Grid"][-1] == "-"
    assert rows["all trades (buyer prices)"][0] == str(run["exchange"]["trades"])


def test_tasks_and_slices_are_labelled_the_same_in_the_table_and_the_json(run):
    summary = run["summary"]
    lines = run["stdout"].splitlines()
    header = next(line for line in lines if line.startswith("shard "))
    assert header.split() == ["shard", "tasks", "slices", "p50", "ms", "p99", "ms"]
    for shard, row in summary["shards"].items():
        printed = next(line for line in lines if line.startswith(shard + " ")).split()
        assert printed[1:3] == [str(row["tasks"]), str(row["slices"])]
        assert row["tasks"] == summary["counters"][f"tasks_{shard}"]
        assert row["slices"] >= row["tasks"] > 0


def test_one_trade_count_with_the_exchanges_meaning(run):
    counters = run["summary"]["counters"]
    assert "trades" not in counters  # the fleet's count is of trade sides, named so
    trades = run["exchange"]["trades"]
    with (run["results"] / "exchange" / "trades.csv").open() as handle:
        listed = list(csv.DictReader(handle))
    assert len(listed) == trades
    # Every asset but the market maker belongs to the demo fleet: one side each in the trade events.
    sides = sum((row["seller"] != "Market Maker") + (row["buyer"] != "Market Maker") for row in listed)
    assert counters["trade_sides_seen"] == sides
    assert (
        f"trade sides seen by the fleet: {sides} (one per fleet asset in a trade; the exchange's trades: {trades})"
        in run["stdout"]
    )
    assert "rejected: 0" in run["stdout"].splitlines()


def test_the_results_line_lists_everything_written(run):
    results = run["results"]
    line = next(line for line in run["stdout"].splitlines() if line.startswith("results: "))
    listed = line.removeprefix("results: ").split(", ")
    files = {str(path) for path in results.rglob("*") if path.is_file()}
    covered = {
        path for path in files if path in listed or any(path.startswith(item) for item in listed if item.endswith("/"))
    }
    assert covered == files
    for name in ("report.html", "exchange/orders.csv", "exchange/trades.csv", "logs/"):
        assert f"{results}/{name}" in listed
    assert all(Path(item.rstrip("/")).exists() for item in listed)


def test_every_slot_is_in_slots_csv_the_first_one_included(run):
    with (run["results"] / "slots.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["slot"][11:] for row in rows] == FIRST_SLOTS
    assert sum(int(row["trades"]) for row in rows) == run["exchange"]["trades"]
    traded = [row for row in rows[1:] if int(row["trades"])]
    # Buyer prices include the grid fees beside them: 22 ct market maker rate + 4 + 4 ct fees.
    assert {(float(row["buyer_price_ct_per_kWh"]), float(row["grid_fee_ct_per_kWh"])) for row in traded} == {
        (30.0, 8.0)
    }
    # The first slot's fees are not in the tree yet: bids ramp to the 35 ct fallback instead.
    assert 30.0 <= float(rows[0]["buyer_price_ct_per_kWh"]) <= 35.0 and float(rows[0]["grid_fee_ct_per_kWh"]) == 8.0
    html = (run["results"] / "report.html").read_text()
    assert 'src="data:image/png;base64,' in html and "http://" not in html and "https://" not in html


def test_the_first_slot_trades(run):
    # Markets report no fee in the first slot (REDIS.md 7.3): bids must not stop at the market
    # maker rate without fees, or the first slot trades nothing.
    with (run["results"] / "exchange" / "trades.csv").open() as handle:
        slots = {row["slot"][11:] for row in csv.DictReader(handle)}
    assert "00:00" in slots


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        (["--scenario", "missing.json"], "--scenario", "cannot read scenario missing.json: No such file"),
        (["--duration", "-1h"], "--duration", "not a duration: '-1h'"),
        (["--duration", "0"], "--duration", "'0' is shorter than one slot of the scenario (15 min)"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2_before_anything_starts(tmp_path, args, option, says):
    # A Redis URL where nothing answers: reaching it would be a different error.
    done = demo(
        *args, "--results", str(tmp_path / "results"), cwd=tmp_path, redis_url="redis://127.0.0.1:1", timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"Error: {option}: ") and says in done.stderr, done.stderr
    assert not (tmp_path / "results").exists()
