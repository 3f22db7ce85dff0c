"""Operator commands against a running fleet: real exchange, dispatcher and Celery workers."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gsy_e_sdk.wire.redis_connection import get_connection
from gsy_local_exchange.embedded_redis import PrivateRedis
from orchestrator.celery_app import make_app
from orchestrator.config import load_fleet_config
from orchestrator.dispatcher import Dispatcher
from orchestrator.operator import Operator, OperatorError
from orchestrator.operator_cli import enqueue_group
from orchestrator.processes import exchange_command, exchange_env, wait_for_exchange, worker_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
FLEET = {
    "name": "operator-fleet",
    "shards": 2,
    "max_assets_per_task": 5,
    "aggregators": [
        {"name": "households", "assets": ["Load *", "PV *", "Tesla Powerwall *"]},
        {"name": "grid-operator", "markets": ["Community"]},
    ],
    "strategies": {
        "Load": {"name": "price_ramp", "params": {"initial_buying_rate": 12}},
        "PV": {"name": "price_ramp", "params": {"final_selling_rate": 12}},
        "Storage": {"name": "storage_arbitrage"},
    },
}
PAUSED = "Load 2 L21"


@pytest.fixture(scope="module")
def fleet_redis() -> Iterator[str]:
    """A Redis of this module's own: the running fleet's queues and channels meet no other test's."""
    server = PrivateRedis().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def running_fleet(tmp_path_factory, fleet_redis):
    """Six slots of the community at 5 s per slot, two workers on separate shard queues."""
    redis_url = fleet_redis
    tmp = tmp_path_factory.mktemp("operator")
    fleet_file = tmp / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(FLEET))
    results = tmp / "exchange"
    log = open(tmp / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(
            SCENARIO,
            "--duration",
            "90m",
            "--pace",
            "5",
            "--start-date",
            "2026-06-01T10:00",
            "--start-when-selected",
            "1",
            "--results",
            str(results),
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=exchange_env(redis_url),
    )
    connection = get_connection(redis_url)
    wait_for_exchange(connection.redis, exchange)
    config = load_fleet_config(fleet_file)
    app = make_app(redis_url)
    dispatcher = Dispatcher(config, connection, app)
    dispatcher.start(fresh=True)
    env = {**os.environ, "GSY_FLEET_CONFIG": str(fleet_file), "REDIS_URL": redis_url, "GSY_FLEET_BROKER_URL": redis_url}
    workers = [
        subprocess.Popen(
            worker_command([queue], name), env=env, stdout=open(tmp / f"{name}.log", "w"), stderr=subprocess.STDOUT
        )
        for name, queue in (("oa", "shard-0"), ("ob", "shard-1"))
    ]
    thread = threading.Thread(target=dispatcher.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < 2:
            assert time.monotonic() < deadline, "workers did not start"
        while dispatcher.store.counters().get("tasks_done", 0) == 0:
            assert time.monotonic() < deadline, "the fleet never handled an event"
            time.sleep(0.1)
        yield {
            "config": config,
            "file": fleet_file,
            "dispatcher": dispatcher,
            "app": app,
            "exchange": exchange,
            "results": results,
            "env": env,
            "redis_url": redis_url,
        }
    finally:
        exchange.terminate()
        exchange.wait(timeout=20)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        log.close()


def _operator(fleet) -> Operator:
    return Operator(fleet["config"], fleet["dispatcher"].store, fleet["app"])


def test_unknown_targets_and_parameters_are_refused_before_anything_is_sent(running_fleet):
    operator = _operator(running_fleet)
    with pytest.raises(OperatorError, match="unknown asset 'No Such Load'"):
        operator.pause("No Such Load")
    with pytest.raises(OperatorError, match="unknown aggregator"):
        operator.resync("nobody")
    with pytest.raises(OperatorError, match="no parameter colour"):
        operator.set_param("PV 1 (4kW)", None, {"colour": "red"})
    with pytest.raises(OperatorError, match="unknown market"):
        operator.grid_fee("Load 1 L13", 3)
    cli = CliRunner().invoke(
        enqueue_group,
        ["--config", str(running_fleet["file"]), "--redis-url", running_fleet["redis_url"], "pause", "No Such Load"],
    )
    assert cli.exit_code == 2 and "unknown asset" in cli.output


def test_order_fee_parameter_and_resync_reach_the_exchange(running_fleet):
    operator = _operator(running_fleet)
    # At a slot's start, before its strategy bid has traded the load's whole need (by 60 % of a
    # slot it often has, and a bid beyond what the load still needs is refused).
    dispatcher = running_fleet["dispatcher"]
    seen = len(dispatcher.slots_seen)
    deadline = time.monotonic() + 15
    while len(dispatcher.slots_seen) == seen:
        assert time.monotonic() < deadline, "no new slot"
        time.sleep(0.01)
    order = operator.order("Load 1 L13", "bid", 0.01, 5)
    (answer,) = operator.wait(order, 30)
    (entry,) = next(iter(answer["response"]["responses"].values()))
    assert answer["status"] == "done" and entry["command"] == "bid" and entry["status"] == "ready"
    (fee,) = operator.wait(operator.grid_fee("Community", 2.5), 30)
    assert fee["status"] == "done"
    params = operator.wait(operator.set_param(None, "households", {"final_selling_rate": 11}), 30)
    assert params and all(answer["params"] == {"final_selling_rate": 11} for answer in params)
    resynced = operator.wait(operator.resync("households"), 30)
    assert len(resynced) == len(running_fleet["dispatcher"].slices[running_fleet["dispatcher"].aggregators[0].uuid])
    assert all(answer["status"] == "done" and answer["result"]["commands"] > 0 for answer in resynced)


def test_a_refused_order_says_how_much_the_asset_had_to_trade(running_fleet):
    """The exchange refuses an offer beyond what the PV can sell without a reason (as the
    reference does); the CLI adds the energy the fleet last saw (0 kWh for a PV at night)."""
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gsy_e_sdk",
            "enqueue",
            "--config",
            str(running_fleet["file"]),
            "--redis-url",
            running_fleet["redis_url"],
            "--wait",
            "order",
            "PV 1 (4kW)",
            "--side",
            "offer",
            "--energy",
            "1000",
            "--rate",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=running_fleet["env"],
        cwd=ROOT,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert '"status": "error"' in result.stdout  # the answer itself is still printed
    (line,) = result.stderr.splitlines()
    assert re.match(
        r"Error: PV 'PV 1 \(4kW\)' had [0-9.e-]+ kWh to sell in slot \S+ \(at \d+ %\), "
        r"and the offer asked for 1000 kWh; Error when handling offer create on area PV 1 \(4kW\)",
        line,
    ), line
    assert time.monotonic() - started < 30


def test_the_example_pauses_an_asset_and_it_stops_ordering(running_fleet):
    example = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "operator_pause.py"),
            "--config",
            str(running_fleet["file"]),
            "--redis-url",
            running_fleet["redis_url"],
            "--asset",
            PAUSED,
            "--seconds",
            "12",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=running_fleet["env"],
        cwd=ROOT,
    )
    assert example.returncode == 0, example.stderr
    assert '"command": "pause"' in example.stdout and '"command": "resume"' in example.stdout
    assert running_fleet["exchange"].wait(timeout=120) == 0
    with (running_fleet["results"] / "orders.csv").open() as handle:
        slots_by_asset = defaultdict(set)
        for row in csv.DictReader(handle):
            slots_by_asset[row["asset"]].add(row["slot"])
    all_slots = set().union(*slots_by_asset.values())
    assert len(all_slots) == 6
    # Paused for 12 s at 5 s per slot: at least one whole slot without its orders; others trade on.
    assert len(slots_by_asset[PAUSED]) <= len(all_slots) - 1
    assert slots_by_asset["Load 1 L13"] == all_slots
