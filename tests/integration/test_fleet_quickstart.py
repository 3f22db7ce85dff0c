"""``gsy-e-sdk fleet run`` as a new user's quick start (issue 16), read as that user reads it.

- ``--local-exchange SCENARIO``: one command starts the exchange (waiting for the fleet), the
  dispatcher and workers, shows a start line and progress, and ends with the summary and
  ``results/``; every slot, the first one included, has the fleet's orders.
- An exchange started elsewhere with ``--start-when-selected`` = the areas the fleet attaches:
  the same start line (with that count), progress as a counter, and the fleet's side of the
  summary, which says where the exchange's own results are.
- The progress lines and the warning for a fleet that attached late, without processes.

Both runs are two simulated hours at fast pace on the test Redis (``external_devices.json``:
House 2's load, PV and market are open to clients).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import redis
import yaml

from orchestrator.fleet_run import SlotProgress
from orchestrator.processes import exchange_command, exchange_env, stop_processes, wait_for_exchange
from orchestrator.report import fleet_summary, render_table

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "gsy_local_exchange" / "scenarios" / "external_devices.json"
ASSETS = {"load", "pv"}
AREAS = 3  # the two assets and the market house-2
SLOT_TIMES = ["00:00", "00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45"]
PROGRESS = re.compile(r"^slot (\d+)(/8)? \d{4}-\d\d-\d\dT(\d\d:\d\d)  trade sides \d+  rejected \d+$")


def write_fleet(tmp: Path) -> Path:
    path = tmp / "fleet.yaml"
    fleet = {
        "name": f"quickstart-{uuid.uuid4().hex[:8]}",
        "shards": 2,
        "aggregators": [{"name": "house-2", "assets": sorted(ASSETS)}, {"name": "operator", "markets": ["House 2"]}],
        "strategies": {
            "Load": {"name": "price_ramp"},
            "PV": {"name": "price_ramp"},
            "Market": {"name": "grid_fee", "params": {"base_fee": 1}},
        },
    }
    path.write_text(yaml.safe_dump(fleet))
    return path


def fleet_run(*args: str, cwd: Path, redis_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gsy_e_sdk", "fleet", "run", *args],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=150,
    )


def progress_lines(stdout: str) -> list[re.Match]:
    return [match for line in stdout.splitlines() if (match := PROGRESS.match(line))]


def orders_by_slot(orders_csv: Path) -> dict[str, set[str]]:
    by_slot = defaultdict(set)
    with orders_csv.open() as handle:
        for order in csv.DictReader(handle):
            by_slot[order["slot"][11:]].add(order["asset"])
    return by_slot


def test_local_exchange_runs_the_fleet_with_progress_and_a_report(tmp_path, redis_url):
    results = tmp_path / "results"
    done = fleet_run(
        "--config",
        str(write_fleet(tmp_path)),
        "--local-exchange",
        str(SCENARIO),
        "--duration",
        "2h",
        "--results",
        str(results),
        cwd=tmp_path,
        redis_url=redis_url,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert re.match(
        r"^fleet quickstart-\w+: 2 aggregators, 2 assets, 1 markets; 2 shards, 2 workers; "
        r"local exchange \(external_devices.json\) on redis://",
        lines[0],
    ), lines[0]
    assert lines[1].startswith(f"attached {AREAS} areas (assets + markets)")
    progress = progress_lines(done.stdout)
    assert len(progress) >= 2 and all(match[2] == "/8" for match in progress), done.stdout
    assert (progress[-1][1], progress[-1][3]) == ("8", "01:45")
    # The summary: the markets, the shards, the fleet's lines, and everything written.
    assert any(line.startswith("market ") for line in lines) and any(line.startswith("shard ") for line in lines)
    assert "rejected: 0" in lines
    listed = next(line for line in lines if line.startswith("results: ")).removeprefix("results: ").split(", ")
    assert f"{results}/report.html" in listed and f"{results}/exchange/orders.csv" in listed
    assert (results / "report.html").read_text().startswith("<!doctype html>")
    summary = json.loads((results / "summary.json").read_text())
    assert summary["scenario"]["slots"] == 8 and summary["exchange"]["strict_reference"]
    # The exchange waited for the fleet: every slot, the first one included, has the fleet's orders.
    by_slot = orders_by_slot(results / "exchange" / "orders.csv")
    assert sorted(by_slot) == SLOT_TIMES
    for slot, assets in by_slot.items():
        assert "load" in assets and assets <= ASSETS, (slot, assets)
    assert "--start-when-selected" not in done.stderr  # no warning: the fleet saw the first slot


def test_bad_local_options_are_one_error_line_before_anything_starts(tmp_path):
    fleet = write_fleet(tmp_path)
    for args, says in (
        (["--local-exchange", str(SCENARIO), "--pace", "slow"], "Error: --pace: 'slow' is not 'fast'"),
        (["--local-exchange", str(ROOT / "gsy_local_exchange" / "scenarios" / "community.json")], "Error: --config: "),
        (["--duration", "2h"], "--duration needs --local-exchange"),
    ):
        done = fleet_run(
            "--config",
            str(fleet),
            *args,
            "--results",
            str(tmp_path / "r"),
            cwd=tmp_path,
            redis_url="redis://127.0.0.1:1",
        )
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory, redis_url) -> dict:
    """``gsy-e-sdk exchange run --start-when-selected 3`` as a user starts it in another terminal,
    then ``gsy-e-sdk fleet run`` against it."""
    tmp = tmp_path_factory.mktemp("elsewhere")
    log = open(tmp / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(
            SCENARIO,
            "--strict-reference",
            "--start-when-selected",
            str(AREAS),
            "--duration",
            "2h",
            "--pace",
            "fast",
            "--results",
            str(tmp / "exchange"),
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=exchange_env(redis_url),
    )
    client = redis.Redis.from_url(redis_url)
    try:
        wait_for_exchange(client, exchange)
        done = fleet_run(
            "--config", str(write_fleet(tmp)), "--results", str(tmp / "results"), cwd=tmp, redis_url=redis_url
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert exchange.wait(timeout=30) == 0
    finally:
        stop_processes([exchange], timeout=10)
        client.close()
        log.close()
    return {"done": done, "results": tmp / "results", "orders": orders_by_slot(tmp / "exchange" / "orders.csv")}


def test_an_exchange_started_elsewhere_gets_the_same_start_line_progress_and_the_fleets_summary(elsewhere):
    done = elsewhere["done"]
    lines = done.stdout.splitlines()
    assert re.match(
        r"^fleet quickstart-\w+: 2 aggregators, 2 assets, 1 markets; 2 shards, 2 workers; "
        r"the exchange started elsewhere on redis://",
        lines[0],
    ), lines[0]
    # The count the user checks against the exchange's --start-when-selected.
    assert lines[1].startswith(f"attached {AREAS} areas (assets + markets): the exchange's --start-when-selected")
    progress = progress_lines(done.stdout)
    assert progress and all(match[2] is None for match in progress), done.stdout  # a counter: no total
    assert progress[-1][3] == "01:45"
    assert not any(line.startswith("market ") for line in lines)  # the exchange's trades are not the fleet's
    assert any(line.startswith("shard ") for line in lines) and "rejected: 0" in lines
    assert "where that exchange writes them" in done.stdout
    summary = json.loads((elsewhere["results"] / "summary.json").read_text())
    assert summary["slots"]["seen"] == 8 and summary["counters"]["commands_accepted"] > 0
    assert "warning" not in done.stderr
    by_slot = elsewhere["orders"]
    for slot in SLOT_TIMES[1:]:
        assert "load" in by_slot.get(slot, set()) and by_slot[slot] <= ASSETS, (slot, by_slot.get(slot))


def test_an_exchange_started_elsewhere_gets_the_fleets_orders_in_its_first_slot(elsewhere):
    assert "load" in elsewhere["orders"].get("00:00", set())


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_line_per_slot_off_a_terminal_and_a_bar_on_one(monkeypatch):
    monkeypatch.setattr(SlotProgress, "LINE_EVERY_S", 0.0)
    plain = io.StringIO()
    with SlotProgress(3, "2026-01-01T00:00", stream=plain) as progress:
        for slot in ("2026-01-01T00:00", "2026-01-01T00:15", "2026-01-01T00:30"):
            progress(slot)
    assert plain.getvalue().splitlines() == [
        f"slot {index}/3 2026-01-01T00:{minute}  trade sides 0  rejected 0"
        for index, minute in ((1, "00"), (2, "15"), (3, "30"))
    ]
    terminal = FakeTerminal()
    with SlotProgress(3, stream=terminal) as progress:
        progress("2026-01-01T00:00")
    assert "slots" in terminal.getvalue() and "1/3" in terminal.getvalue()


def test_throttled_progress_still_shows_the_last_slot(monkeypatch):
    monkeypatch.setattr(SlotProgress, "LINE_EVERY_S", 3600.0)
    plain = io.StringIO()
    with SlotProgress(None, stream=plain) as progress:
        for minute in ("00", "15", "30"):
            progress(f"2026-01-01T00:{minute}")
    assert plain.getvalue().splitlines() == [
        "slot 1 2026-01-01T00:00  trade sides 0  rejected 0",
        "slot 3 2026-01-01T00:30  trade sides 0  rejected 0",
    ]


def test_a_fleet_that_attached_after_the_first_slot_is_warned_once(capsys):
    with SlotProgress(None, "2026-01-01T00:00", stream=io.StringIO()) as progress:
        progress.areas = AREAS
        progress("2026-01-01T00:45")
        progress("2026-01-01T01:00")
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and "already at slot 2026-01-01T00:45" in warnings[0]
    assert warnings[0].endswith(f"--start-when-selected {AREAS}")


def test_the_fleets_summary_without_the_exchange_has_no_market_table():
    summary = fleet_summary({"shard-0": [0.01, 0.02]}, {"trades": 4, "tasks_shard-0": 2}, 3.0, ["a", "b"])
    table = render_table(summary)
    assert summary["slots"] == {"seen": 2, "first": "a", "last": "b"} and "exchange" not in summary
    assert table.splitlines()[0].split() == ["shard", "tasks", "slices", "p50", "ms", "p99", "ms"]
    assert "trade sides seen by the fleet: 4 (one per fleet asset in a trade)" in table
