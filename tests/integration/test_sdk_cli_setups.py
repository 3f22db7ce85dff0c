"""``gsy-e-sdk run --setup <bundled> --run-on-redis`` against the bundled scenarios.

The first case is the issue's "done when": ``gsy-e-sdk --log-level ERROR run --setup
test_redis_aggregator --run-on-redis`` completes a run with trades. Each exchange is started with
the scenario and ``--start-when-selected`` the README's table of bundled setups names, so the
table is tested too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

FAST = ("--slot-length", "15m", "--tick-length", "90s", "--pace", "fast", "--tick-deadline", "0.5s")


def readme_exchange(setup: str) -> tuple[str, str, str]:
    """(scenario, "--start-when-selected", N) of ``setup``'s row in the README's table."""
    row = re.search(
        rf"^\| `{setup}` \| Redis \(`--run-on-redis`\) \| `([\w.]+)`, `--start-when-selected (\d+)` \|$",
        (ROOT / "README.md").read_text(),
        re.M,
    )
    assert row, f"the README's table lost {setup}"
    return row.group(1), "--start-when-selected", row.group(2)


class Recorder:
    """Every message on the aggregator channels (``external-aggregator//*``), decoded."""

    def __init__(self, redis_url: str) -> None:
        self._redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self.messages: list[tuple[str, dict]] = []
        self._pubsub.psubscribe(**{"external-aggregator//*": self._record})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.1, daemon=True)

    def _record(self, message: dict) -> None:
        self.messages.append((message["channel"], json.loads(message["data"])))

    def batches(self) -> list[dict]:
        return [m for c, m in self.messages if c == "external-aggregator//batch_commands"]

    def answers(self) -> list[dict]:
        return [
            answer
            for c, m in self.messages
            if c.endswith("/response/batch_commands")
            for answers in m["responses"].values()
            for answer in answers
        ]

    def trades(self) -> list[dict]:
        return [
            t for c, m in self.messages if c.endswith("/events/all") and m["event"] == "trade" for t in m["trade_list"]
        ]

    def close(self) -> None:
        self._thread.stop()
        self._thread.join(2)
        self._redis.close()


@pytest.fixture()
def recorder(redis_url) -> Iterator[Recorder]:
    recording = Recorder(redis_url)
    yield recording
    recording.close()


def run_setup(setup: str, redis_url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "gsy_e_sdk", "--log-level", "ERROR", "run", "--setup", setup, "--run-on-redis"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_done_when_test_redis_aggregator_completes_with_trades(start_exchange, redis_url, recorder, tmp_path):
    scenario, *wait = readme_exchange("test_redis_aggregator")
    exchange = start_exchange(scenario, "--duration", "1h", *FAST, *wait, "--results", str(tmp_path))
    result = run_setup("test_redis_aggregator", redis_url)
    assert result.returncode == 0, result.stderr
    assert exchange.wait(30) == 0
    bought = [t for t in recorder.trades() if t["buyer"] == "load"]
    assert bought, recorder.messages[-5:]
    trades_csv = (tmp_path / "trades.csv").read_text().splitlines()
    assert any(",load," in row for row in trades_csv[1:])
    fees = [
        c for b in recorder.batches() for cs in b["batch_commands"].values() for c in cs if c["type"] == "grid_fees"
    ]
    assert fees and all(c["data"] == {"fee_const": 5} for c in fees)


def test_market_aggregator_setup_raises_fees_each_slot(start_exchange, redis_url, recorder):
    scenario, *wait = readme_exchange("test_redis_market_aggregator")
    exchange = start_exchange(scenario, "--duration", "1h", *FAST, *wait)
    result = run_setup("test_redis_market_aggregator", redis_url)
    assert result.returncode == 0, result.stderr
    assert exchange.wait(30) == 0
    per_market: dict[str, list[float]] = {}
    for batch in recorder.batches():
        for uuid, commands in batch["batch_commands"].items():
            per_market.setdefault(uuid, []).extend(c["data"]["fee_const"] for c in commands if c["type"] == "grid_fees")
    assert len(per_market) == 2
    for fees in per_market.values():
        assert len(fees) >= 3 and fees == list(range(1, len(fees) + 1))
    answers = recorder.answers()
    assert {a["command"] for a in answers} == {"dso_market_stats", "grid_fees"}
    assert all(a["status"] == "ready" for a in answers)


def test_forecast_setup_sends_forecasts_the_exchange_accepts(start_exchange, redis_url, recorder):
    scenario, *wait = readme_exchange("test_sending_energy_forecast")
    exchange = start_exchange(scenario, "--duration", "1h", *FAST, *wait)
    result = run_setup("test_sending_energy_forecast", redis_url)
    assert result.returncode == 0, result.stderr
    assert exchange.wait(30) == 0
    kinds = [c["type"] for b in recorder.batches() for cs in b["batch_commands"].values() for c in cs]
    assert kinds.count("set_energy_forecast") >= 4 and kinds.count("set_energy_measurement") >= 4
    answers = recorder.answers()
    assert answers and all(a["status"] == "ready" for a in answers)
    # The forecast sent during one slot is the PV's energy in the next.
    pv_energy = [
        node["asset_info"]["available_energy_kWh"]
        for c, m in recorder.messages
        if c.endswith("/events/all") and m["event"] == "market"
        for node in _flat(m["grid_tree"])
        if node.get("area_name") == "forecast-measurement-pv"
    ]
    assert pv_energy[1:3] == [1.0, 2.0]


def _flat(tree: dict) -> Iterator[dict]:
    for node in tree.values():
        yield node
        yield from _flat(node.get("children") or {})


def test_unknown_setup_is_a_usage_error(redis_url):
    result = run_setup("no_such_setup", redis_url)
    assert result.returncode == 2
    assert "Could not find the specified module 'no_such_setup'" in result.stderr


def test_idle_client_process_uses_no_cpu_and_two_threads(redis_url):
    """Measured in a child process so nothing else in the test process interferes."""
    code = (
        "import time, threading\n"
        "from gsy_e_sdk.wire.redis_connection import get_connection\n"
        "c = get_connection()\n"
        "c.subscribe({'idle/check': lambda ch, p: None})\n"
        "time.sleep(0.3); t = time.process_time(); time.sleep(2)\n"
        "print(time.process_time() - t, threading.active_count())\n"
    )
    env = dict(os.environ, REDIS_URL=redis_url)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    assert float(out[0]) < 0.05 and int(out[1]) == 2
