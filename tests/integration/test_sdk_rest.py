"""The SDK's REST clients against the real local exchange with its HTTP + websocket facade.

Every test starts ``gsy-e-sdk exchange run --http-port ...`` in a subprocess (users through the
child's environment) and drives it with ``Aggregator``, ``RestAssetClient`` and
``RestMarketClient`` exactly as a user script would. Nothing is mocked.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from gsy_e_sdk import constants, jwt_auth
from gsy_e_sdk.aggregator import Aggregator
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.rest_market import RestMarketClient
from gsy_e_sdk.utils import (
    get_aggregators_list,
    get_area_uuid_and_name_mapping_from_simulation_id,
    get_area_uuid_from_area_name_and_collaboration_id,
)
from tests.conftest import ROOT
from tests.integration.raw_client import HOUSE_2, LOAD, PV, SIM, free_port
from tests.integration.sdk_rest_fixtures import PASSWORD, SECOND_PASSWORD, SECOND_USER, USER, Facade

pytestmark = pytest.mark.integration

# A slot of 10 ticks; the exchange waits at most 0.5 s for an aggregator's batch at a tick.
FAST = ("--slot-length", "15m", "--tick-length", "90s", "--pace", "fast", "--tick-deadline", "0.5s")
JWT_PATTERN = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")


@pytest.fixture()
def all_logs() -> Iterator[list[str]]:
    """Every log record of the process at DEBUG, formatted with its traceback, as text."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def assert_no_secrets(lines: list[str], tokens: set[str], passwords: tuple[str, ...]) -> None:
    text = "\n".join(lines)
    for password in passwords:
        assert password not in text
    for token in tokens:
        assert token not in text
    assert not JWT_PATTERN.search(text), JWT_PATTERN.search(text).group(0)


class TradingAggregator(Aggregator):
    """The README strategy over REST, recording what it sees."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.responses: list[dict] = []
        self.trades: list[dict] = []
        self.house_fees: list[Any] = []
        self.devices_seen_by_hook: list[list[str]] = []
        super().__init__(*args, **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        self.devices_seen_by_hook.append(list(self.device_uuid_list))
        house = self.latest_grid_tree_flat.get(HOUSE_2) or {}
        self.house_fees.append(house.get("current_market_fee"))
        batch = self.add_to_batch_commands
        for uuid, node in self.latest_grid_tree_flat.items():
            if uuid not in self.device_uuid_list:
                continue
            if uuid == HOUSE_2:
                batch.last_market_dso_stats(uuid).grid_fees(uuid, 5)
                continue
            info = node.get("asset_info") or {}
            if (info.get("energy_requirement_kWh") or 0) > 0:
                batch.bid_energy(uuid, info["energy_requirement_kWh"] / 2, 30)
            if (info.get("available_energy_kWh") or 0) > 0:
                batch.offer_energy(uuid, info["available_energy_kWh"] / 2, 1)
        response = self.execute_batch_commands()
        if response:
            self.responses.append(response)

    def on_trade(self, trade_info: dict) -> None:
        self.trades.extend(trade_info["trade_list"])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_aggregator_and_clients_trade_over_rest_without_leaking_secrets(facade, closing, all_logs) -> None:
    exchange = facade("--duration", "1h", *FAST, "--start-when-selected", "3")
    # Names resolve through GraphQL, as scripts do before any event arrived.
    assert get_area_uuid_from_area_name_and_collaboration_id(SIM, "load", exchange.domain) == LOAD
    assert get_area_uuid_and_name_mapping_from_simulation_id(SIM)["House 2"] == HOUSE_2

    aggregator = closing(TradingAggregator("rest_aggr"))
    assert aggregator.websocket_connected
    clients = [closing(RestAssetClient(LOAD)), closing(RestAssetClient(PV)), closing(RestMarketClient(HOUSE_2))]
    for client in clients:
        client.select_aggregator(aggregator.aggregator_uuid)
        assert client.active_aggregator == aggregator.aggregator_uuid
    # Selections made in this process are listed at once, and the websocket's
    # selected_by_device events (sent again on every connect) add no duplicates.
    assert sorted(aggregator.device_uuid_list) == sorted([LOAD, PV, HOUSE_2])

    registry = aggregator.get_configuration_registry()
    nodes = {}
    stack = [registry]
    while stack:
        node = stack.pop()
        nodes[node["name"]] = node
        stack.extend(node.get("children") or [])
    assert nodes["pv"]["aggregator_name"] == "rest_aggr" and nodes["pv"]["registered"] is True
    assert [a["name"] for a in get_aggregators_list()] == ["rest_aggr"]
    # A second Aggregator of the same name reuses the first (REST.md 3.3).
    again = closing(Aggregator("rest_aggr"))
    assert again.aggregator_uuid == aggregator.aggregator_uuid

    wait_for(lambda: aggregator.is_finished, 90, f"finish:\n{exchange.process.output()[-3000:]}")
    assert aggregator.wait_for_hooks(15)
    assert sorted(aggregator.device_uuid_list) == sorted([LOAD, PV, HOUSE_2])
    assert all(len(set(seen)) == len(seen) for seen in aggregator.devices_seen_by_hook)

    # Batches were answered over the aggregator websocket, per device.
    assert aggregator.responses, exchange.process.output()[-3000:]
    answers = [
        answer
        for response in aggregator.responses
        for uuid, entries in response["responses"].items()
        for answer in entries
    ]
    assert {"bid", "grid_fees", "dso_market_stats"} <= {answer["command"] for answer in answers}
    assert any(answer["status"] == "ready" for answer in answers if answer["command"] == "bid")
    # The load bought energy; the fee set over REST shows up in a later slot's grid tree.
    assert [trade for trade in aggregator.trades if trade["buyer"] == "load"]
    assert 5 in aggregator.house_fees[1:]
    # One websocket per aggregator: the asset and market clients never opened one.
    assert all(client.websocket_thread is None for client in clients)
    assert exchange.process.wait(30) == 0

    token = aggregator.jwt_token
    assert token and clients[0].jwt_token == token  # one login for every client of the process
    assert jwt_auth.token_provider(exchange.domain).logins == 1
    assert_no_secrets(all_logs, {token}, (PASSWORD,))
    assert any("websocket_connection.wire" in line for line in all_logs)  # DEBUG really was on


def test_asset_and_market_commands_answer_over_their_own_sockets(facade, closing) -> None:
    facade("--duration", "2h", "--pace", "2", "--slot-length", "15m", "--tick-length", "90s")
    forecast_load = "2daa372a-b964-414b-aa57-e163e5dfdad2"
    asset = closing(RestAssetClient(forecast_load))
    assert asset.websocket_thread is None  # no hooks overridden: no socket until needed
    registered = asset.register()
    assert registered["command"] == "register" and registered["registered"] is True
    assert asset.registered and asset.websocket_connected
    answer = asset.set_energy_forecast({"2026-06-01T10:30": 0.4})
    assert answer["command"] == "set_energy_forecast" and answer["status"] == "ready"
    assert asset.set_energy_measurement({"2026-06-01T10:00": 0.3}, do_not_wait=True) is None
    market = closing(RestMarketClient(HOUSE_2))
    fees = market.grid_fees(3)
    assert fees["command"] == "grid_fees" and fees["status"] == "ready"
    stats = market.last_market_dso_stats()
    assert stats["command"] == "dso_market_stats" and stats["status"] == "ready"
    # No live-generation feed locally: acknowledged and answered as the hosted exchange does (issue 13).
    live = asset.set_live_generation({"2026-06-01T10:00": 1.0})
    assert live["command"] == "set-live-generation" and live["status"] == "ready"
    unregistered = asset.unregister(is_blocking=True)
    assert unregistered["command"] == "unregister" and asset.registered is False


def test_expired_token_is_renewed_before_use_and_after_a_401(facade, closing, all_logs, monkeypatch) -> None:
    exchange = facade("--paused", "--token-lifetime", "3s")
    aggregator = closing(Aggregator("token_aggr"))
    provider = jwt_auth.token_provider(exchange.domain)
    first = provider.current
    assert provider.logins == 1

    # Proactively: a call after 3/4 of the lifetime logs in again first, without a 401.
    time.sleep(2.6)
    assert aggregator.get_configuration_registry()["name"] == "Grid"
    assert provider.logins == 2 and provider.current != first
    assert not [line for line in all_logs if "refused the token" in line]

    # The facade closes a socket when its token expires; the first user's would then log in
    # again with the second user's password from the environment below.
    aggregator.close()

    # After expiry (proactive refresh disabled for a second user): the 401 triggers one
    # re-login for all concurrent callers, and every call still succeeds.
    monkeypatch.setenv("API_CLIENT_USERNAME", SECOND_USER)
    monkeypatch.setenv("API_CLIENT_PASSWORD", SECOND_PASSWORD)
    monkeypatch.setattr(constants, "JWT_REFRESH_FRACTION", 100.0)
    second = closing(Aggregator("token_aggr_2"))
    second_provider = jwt_auth.token_provider(exchange.domain)
    assert second_provider is not provider and second_provider.logins == 1
    stale = second_provider.current
    time.sleep(3.5)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(second.get_configuration_registry())) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 6 and all(r and r["name"] == "Grid" for r in results)
    assert second_provider.logins == 2 and second_provider.current != stale
    assert len([line for line in all_logs if "refused the token" in line]) == 1

    # A websocket handshake with an expired token is refused (401): the socket logs in again
    # and connects on its next attempt.
    asset = closing(RestAssetClient(LOAD))
    renewed = second_provider.current
    time.sleep(3.5)
    asset.start_websocket_connection()
    wait_for(lambda: asset.websocket_connected, 15, "the asset websocket")
    assert second_provider.logins == 3
    assert [line for line in all_logs if "handshake refused with HTTP 401" in line]
    assert_no_secrets(
        all_logs, {first, provider.current, stale, renewed, second_provider.current}, (PASSWORD, SECOND_PASSWORD)
    )


def test_rate_limit_429_waits_for_retry_after(facade, closing, all_logs) -> None:
    exchange = facade("--paused", "--rate-limit", "2")
    aggregator = closing(Aggregator("throttled_aggr"))
    started = time.monotonic()
    registries = [aggregator.get_configuration_registry() for _ in range(8)]
    elapsed = time.monotonic() - started
    assert all(registry and registry["name"] == "Grid" for registry in registries)
    # 2 requests/s with a burst of 2: 8 calls cannot pass in under ~3 s without waiting.
    assert elapsed >= 2.0, elapsed
    retried = [line for line in all_logs if "Retry" in line and "registry" in line]
    assert retried, "urllib3 logged no retry"
    assert not [line for line in all_logs if "failed with status code 429" in line]
    # The limit is real: the same burst by hand meets 429 with a Retry-After header.
    headers = {"Authorization": f"JWT {aggregator.jwt_token}"}
    raw = [
        requests.get(
            f"{exchange.domain}/external-connection/configurations/{SIM}/registry",
            data="{}",
            headers=headers,
            timeout=5,
        )
        for _ in range(6)
    ]
    throttled = [response for response in raw if response.status_code == 429]
    assert throttled and int(throttled[0].headers["Retry-After"]) >= 1


def test_cli_runs_the_bundled_rest_setup_and_logs_no_secrets(facade, tmp_path) -> None:
    exchange = facade("--duration", "1h", *FAST, "--start-when-selected", "3")
    log_file = tmp_path / "client.log"
    env = {key: value for key, value in os.environ.items() if key not in ("API_CLIENT_PASSWORD", "API_CLIENT_USERNAME")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gsy_e_sdk",
            "--log-level",
            "DEBUG",
            "--log-file",
            str(log_file),
            "run",
            "--setup",
            "test_create_aggregator",
            "-u",
            USER,
            "-p",
            PASSWORD,
            "-d",
            exchange.domain,
            "-w",
            exchange.websocket_domain,
            "-s",
            SIM,
        ],
        env=dict(env, PYTHONUNBUFFERED="1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = log_file.read_text()
    assert result.returncode == 0, result.stderr + log[-3000:]
    finished = re.search(r"test_create_aggregator finished with (\d+) trades", log)
    assert finished and int(finished.group(1)) > 0, log[-3000:]
    assert "Grid fee from pv to House 2" in log
    # -p on argv works but warns (without the value); nothing secret reaches the log.
    assert "password was given on the command line" in log
    assert PASSWORD not in log and PASSWORD not in result.stderr + result.stdout
    assert not JWT_PATTERN.search(log) and "> Authorization: ***" in log
    assert exchange.process.wait(30) == 0


def test_facade_restart_mid_run_websocket_reconnects_and_trading_resumes(
    start_exchange, rest_env, closing, redis_url, tmp_path, monkeypatch
) -> None:
    """The web tier (``exchange http``) dies and comes back with a new signing secret while the
    exchange keeps running: the SDK logs in again, its websocket reconnects, trades go on."""
    users = json.dumps({USER: PASSWORD})
    exchange = start_exchange(
        "external_devices.json",
        "--simulation-id",
        SIM,
        "--start-date",
        "2026-06-01T10:00",
        "--duration",
        "3h",
        "--slot-length",
        "15m",
        "--tick-length",
        "90s",
        "--pace",
        "2.5",
        "--start-when-selected",
        "2",
    )
    port = free_port()
    monkeypatch.setenv("API_CLIENT_DOMAIN_NAME", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("API_CLIENT_WEBSOCKET_DOMAIN_NAME", f"ws://127.0.0.1:{port}/external-ws")

    def web_tier(secret: str) -> subprocess.Popen:
        log = open(tmp_path / f"http-{secret}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "gsy_e_sdk", "exchange", "http", "--redis-url", redis_url, "--http-port", str(port)],
            env={**os.environ, "GSY_EXCHANGE_USERS": users, "GSY_EXCHANGE_JWT_SECRET": secret * 4},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        Facade(exchange, port).wait_healthy()
        return process

    first = web_tier("first-secret")
    aggregator = closing(TradingAggregator("survivor"))
    for uuid in (LOAD, PV):
        closing(RestAssetClient(uuid)).select_aggregator(aggregator.aggregator_uuid)
    wait_for(lambda: aggregator.trades, 60, f"first trades:\n{exchange.output()[-2000:]}")
    first.kill()
    first.wait()
    wait_for(lambda: not aggregator.websocket_connected, 10, "the websocket to notice the dead facade")
    trades_before = len(aggregator.trades)
    second = web_tier("other-secret")
    try:
        wait_for(lambda: aggregator.websocket_connected, 60, "the websocket to reconnect")
        wait_for(
            lambda: len(aggregator.trades) > trades_before,
            60,
            f"trades after the restart:\n{exchange.output()[-2000:]}",
        )
        # Batches sent after the restart were answered over the new connection.
        responses_before = len(aggregator.responses)
        wait_for(lambda: len(aggregator.responses) > responses_before, 30, "a batch answer after the restart")
        assert jwt_auth.token_provider(os.environ["API_CLIENT_DOMAIN_NAME"]).logins >= 2  # new secret: new login
    finally:
        second.kill()
        second.wait()
