"""The exchange as a process: SIGTERM ends it with complete results; its output never shows the Redis password."""

from __future__ import annotations

import csv
import json
import signal
import sys
import uuid
from pathlib import Path

import pytest
import redis

from gsy_local_exchange.embedded_redis import PrivateRedis, _free_port
from gsy_local_exchange.results import ORDER_COLUMNS, TRADE_COLUMNS
from tests.conftest import SCENARIOS
from tests.integration.raw_client import RawClient
from tests.integration.test_exchange_redis import AGG_EVENTS, _batch, _setup_aggregator
from tests.processes import Proc

pytestmark = pytest.mark.integration


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_sigterm_flushes_complete_results(start_exchange, redis_url: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    # Noon: the templates of House 1 trade every slot; a client's bid adds a row to orders.csv.
    exchange = start_exchange(
        "external_devices.json",
        "--duration",
        "6h",
        "--tick-length",
        "90s",
        "--pace",
        "1",
        "--start-when-selected",
        "1",
        "--start-date",
        "2025-06-01T12:00",
        "--results",
        str(results),
    )
    client = RawClient(redis_url)
    try:
        aggregator, devices = _setup_aggregator(client, ["load"])
        events = AGG_EVENTS.format(aggregator)
        client.wait_for(lambda ch, d: ch == events and d.get("event") == "market")
        answer = _batch(client, aggregator, {devices["load"]: [{"type": "bid", "energy": 0.001, "price": 0.0001}]})
        assert answer["responses"][devices["load"]][0]["status"] == "ready"
        client.wait_for(lambda ch, d: ch == events and d.get("event") == "tick" and d["market_slot"].endswith("12:30"))
    finally:
        client.close()
    exchange.process.send_signal(signal.SIGTERM)
    assert exchange.wait(15) == 0
    summary = json.loads((results / "summary.json").read_text())
    assert summary["stopped_early"] is True and summary["stop_reason"] == "SIGTERM"
    assert 3 <= summary["slots"] < 24
    trades, orders = _rows(results / "trades.csv"), _rows(results / "orders.csv")
    assert trades[0] == TRADE_COLUMNS and orders[0] == ORDER_COLUMNS
    assert len(trades) - 1 == summary["trades"] > 0 and all(len(row) == len(TRADE_COLUMNS) for row in trades)
    assert orders[1:] == [["2025-06-01T12:00", "load", "bid", answer["transaction_id"]]]
    assert "stopped by SIGTERM" in exchange.output()


@pytest.fixture()
def password_redis():
    """A private Redis that requires a password; (URL with the password, the password)."""
    server = PrivateRedis().start()
    password = f"pw-{uuid.uuid4().hex}"
    redis.Redis.from_url(server.url).config_set("requirepass", password)
    yield f"redis://:{password}@127.0.0.1:{server.port}/0", password
    server.stop()


def _exchange_by_env(url: str, tmp_path: Path, *args: str) -> Proc:
    """``exchange run`` with the Redis URL in its environment only, never in its argv."""
    return Proc(
        [
            sys.executable,
            "-m",
            "gsy_e_sdk",
            "--log-level",
            "DEBUG",
            "exchange",
            "run",
            "--scenario",
            str(SCENARIOS / "external_devices.json"),
            *args,
        ],
        tmp_path / f"exchange-{uuid.uuid4().hex[:6]}.log",
        env={"REDIS_URL": url},
    )


def test_the_redis_password_never_reaches_the_exchanges_output(password_redis, tmp_path: Path) -> None:
    url, password = password_redis
    run = _exchange_by_env(url, tmp_path, "--duration", "30m", "--pace", "fast", "--results", str(tmp_path / "r"))
    try:
        assert run.process.wait(timeout=60) == 0, run.output()
    finally:
        run.stop()
    output = run.output()
    assert password not in output and password not in " ".join(run.argv)
    assert f"redis redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in output  # it used REDIS_URL
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["stopped_early"] is False

    unreachable = f"redis://:{password}@127.0.0.1:{_free_port()}/0"
    failed = _exchange_by_env(unreachable, tmp_path, "--duration", "30m")
    try:
        assert failed.process.wait(timeout=30) == 2
    finally:
        failed.stop()
    assert "no Redis answers at redis://:***@" in failed.output() and password not in failed.output()
