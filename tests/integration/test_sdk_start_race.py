"""The README's Redis recipe, started as users do: the exchange and the client at the same instant.

Before the fix the client published CREATE before the exchange had subscribed to
``aggregator-commands`` about half the time, never sent it again, and both processes hung. Each
lane has its own Redis (pub/sub channels are global to a server), so two lanes run side by side.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gsy_local_exchange.embedded_redis import PrivateRedis, find_redis_server_binary
from tests.conftest import SCENARIOS
from tests.processes import Proc

pytestmark = pytest.mark.integration

RUNS = 20
LANES = 2
EXCHANGE = (
    "exchange",
    "run",
    "--scenario",
    str(SCENARIOS / "external_devices.json"),
    "--duration",
    "30m",
    "--slot-length",
    "15m",
    "--tick-length",
    "90s",
    "--pace",
    "fast",
    "--tick-deadline",
    "0.5s",
    "--start-when-selected",
    "3",
)
CLIENT = ("run", "--setup", "test_redis_aggregator", "--run-on-redis")


def run_pair(redis_url: str, index: int, logs: Path) -> str | None:
    """Start both at once (alternating which goes first); None when both finished cleanly."""
    argv = {
        "exchange": [sys.executable, "-m", "gsy_e_sdk", *EXCHANGE, "--redis-url", redis_url],
        "client": [sys.executable, "-m", "gsy_e_sdk", *CLIENT, "--redis-url", redis_url],
    }
    order = ("exchange", "client") if index % 2 == 0 else ("client", "exchange")
    processes = {name: Proc(argv[name], logs / f"{index}-{name}.log") for name in order}
    try:
        for name, timeout in (("client", 60), ("exchange", 30)):
            try:
                code = processes[name].process.wait(timeout)
            except subprocess.TimeoutExpired:  # a hang is what this test looks for
                code = "nothing: still running"
            if code != 0:
                return f"run {index} ({' first, '.join(order)} second): {name} exited {code}\n" + "\n".join(
                    f"--- {other}:\n{process.output()[-1500:]}" for other, process in processes.items()
                )
        return None
    finally:
        for process in processes.values():
            process.stop(5)


def run_lane(lane: int, logs: Path) -> list[str | None]:
    server = PrivateRedis().start()
    try:
        return [run_pair(server.url, index, logs) for index in range(lane, RUNS, LANES)]
    finally:
        server.stop()


def test_exchange_and_client_started_together_always_finish(tmp_path: Path) -> None:
    if find_redis_server_binary() is None:
        pytest.skip("no redis-server binary to give each lane its own Redis")
    started = time.monotonic()
    with ThreadPoolExecutor(LANES) as lanes:
        outcomes = [outcome for lane in lanes.map(run_lane, range(LANES), [tmp_path] * LANES) for outcome in lane]
    failures = [outcome for outcome in outcomes if outcome is not None]
    assert len(outcomes) == RUNS and not failures, f"{len(failures)} of {RUNS} runs failed:\n" + "\n".join(failures)
    logging.getLogger(__name__).info(
        "%d of %d simultaneous starts finished, in %.1f s", RUNS - len(failures), RUNS, time.monotonic() - started
    )
