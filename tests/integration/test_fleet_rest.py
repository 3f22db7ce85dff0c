"""The fleet over REST + websockets: workers submit through the exchange's HTTP facade."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from gsy_e_sdk import jwt_auth
from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.per_process import PerProcessMap
from gsy_e_sdk.wire.redis_connection import get_connection
from orchestrator.celery_app import make_app
from orchestrator.config import FleetConfigError, load_fleet_config
from orchestrator.dispatcher import Dispatcher
from orchestrator.processes import exchange_command, exchange_env, wait_for_exchange, worker_command

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios" / "community.json"
SIM = "5d0a5a4e-7f3c-4d8e-9a51-2b9c61f0e7aa"
USER, PASSWORD = "fleet-operator", "fleet-password-not-in-any-file"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fleet_trades_through_the_rest_facade(redis_url, tmp_path, monkeypatch):
    port = _free_port()
    fleet = {
        "name": "rest-fleet",
        "shards": 2,
        "max_assets_per_task": 6,
        "exchange": {
            "mode": "rest",
            "domain_name": f"http://127.0.0.1:{port}",
            "websocket_domain_name": f"ws://127.0.0.1:{port}/external-ws",
            "simulation_id": SIM,
        },
        "aggregators": [{"name": "households", "assets": ["Load *", "PV *", "Tesla Powerwall *"]}],
        "strategies": {
            "Load": {"name": "price_ramp", "params": {"initial_buying_rate": 12}},
            "PV": {"name": "price_ramp", "params": {"final_selling_rate": 12}},
            "Storage": {"name": "storage_arbitrage"},
        },
    }
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(fleet))
    credentials = {"API_CLIENT_USERNAME": USER, "API_CLIENT_PASSWORD": PASSWORD}
    results = tmp_path / "exchange"
    log = open(tmp_path / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(
            SCENARIO,
            "--duration",
            "1h",
            "--tick-length",
            "30s",
            "--start-date",
            "2026-06-01T10:00",
            "--paused",
            "--http-port",
            str(port),
            "--simulation-id",
            SIM,
            "--results",
            str(results),
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=exchange_env(redis_url, credentials),
    )
    connection = get_connection(redis_url)
    wait_for_exchange(connection.redis, exchange)
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(jwt_auth, "_providers", PerProcessMap(jwt_auth._new_provider))
    config = load_fleet_config(fleet_file)
    app = make_app(redis_url)
    dispatcher = Dispatcher(config, connection, app)
    dispatcher.start(fresh=True)
    env = {
        **os.environ,
        **credentials,
        "GSY_FLEET_CONFIG": str(fleet_file),
        "REDIS_URL": redis_url,
        "GSY_FLEET_BROKER_URL": redis_url,
    }
    workers = [
        subprocess.Popen(
            worker_command([queue], name), env=env, stdout=open(tmp_path / f"{name}.log", "w"), stderr=subprocess.STDOUT
        )
        for name, queue in (("ra", "shard-0"), ("rb", "shard-1"))
    ]
    thread = threading.Thread(target=dispatcher.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < 2:
            assert time.monotonic() < deadline, "workers did not start"
        connection.publish(channels.simulation_control("resume"), {"transaction_id": "rest-fleet"})
        assert exchange.wait(timeout=120) == 0, (tmp_path / "exchange.log").read_text()[-3000:]
        thread.join(timeout=30)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)
        dispatcher.link.close()
        log.close()
    by_slot = defaultdict(set)
    with (results / "orders.csv").open() as handle:
        for row in csv.DictReader(handle):
            by_slot[row["slot"]].add(row["asset"])
    households = set(dispatcher.aggregators[0].assets.values())
    assert len(households) == 25 and len(by_slot) == 4
    for slot, assets in by_slot.items():
        assert assets == households, f"{slot}: missing {households - assets}"
    summary = json.loads((results / "summary.json").read_text())
    assert summary["trades"] > 0
    counters = dispatcher.store.counters()
    # Answers came back on the dispatcher's websocket and were counted there.
    assert counters["commands_accepted"] >= 0.9 * counters["commands_submitted"] > 0, counters
    for worker_log in ("ra.log", "rb.log"):
        assert PASSWORD not in (tmp_path / worker_log).read_text()


def test_rest_mode_without_credentials_or_simulation_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("API_CLIENT_USERNAME", raising=False)
    monkeypatch.delenv("API_CLIENT_SIMULATION_ID", raising=False)
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        yaml.safe_dump(
            {
                "exchange": {"mode": "rest", "domain_name": "http://127.0.0.1:9"},
                "aggregators": [{"name": "a", "assets": ["x"]}],
            }
        )
    )
    config = load_fleet_config(fleet_file)
    with pytest.raises(FleetConfigError, match="simulation_id"):
        Dispatcher(config, None, make_app("redis://127.0.0.1:9"))
    fleet_file.write_text(
        yaml.safe_dump(
            {
                "exchange": {"mode": "rest", "domain_name": "http://127.0.0.1:9", "simulation_id": SIM},
                "aggregators": [{"name": "a", "assets": ["x"]}],
            }
        )
    )
    with pytest.raises(FleetConfigError, match="API_CLIENT_USERNAME"):
        Dispatcher(load_fleet_config(fleet_file), None, make_app("redis://127.0.0.1:9"))
