"""Flower's tasks page during a real fleet run, in headless Chromium.

The local exchange (community.json, half an hour), the dispatcher, two workers started through
the compose entrypoint (``orchestrator.worker_entry``, machine 0 and 1 of 2) and Flower with basic
auth all run on the test Redis. The tasks page, which fills its table by XHR, must list the shard
tasks with aggregator, slot, tick and shard readable in their args. A screenshot is saved to
``tests/browser/artifacts/flower_tasks.png``.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.redis_connection import get_connection
from orchestrator.celery_app import make_app
from orchestrator.config import load_fleet_config
from orchestrator.dispatcher import Dispatcher
from orchestrator.processes import exchange_command, exchange_env, wait_for_exchange
from tests.browser.chromium import chromium_setup, open_browser
from tests.integration.test_flower import FlowerProcess, clean_env
from tests.reliability.fleet_harness import fleet_dict

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOT = ARTIFACTS / "flower_tasks.png"
FLEET = fleet_dict("browser-fleet", max_assets_per_task=6)
# The dispatcher's argsrepr: first aggregator[slice], +more slices, shard, event, slot, tick, counts.
SHARD_ARGS = re.compile(
    r"^(?P<aggregator>[\w-]+)\[(?P<slice>\d+)\](\+\d+)? (?P<shard>shard-\d+) market "
    r"slot=(?P<slot>2026-06-01T\d\d:\d\d) tick=0% (assets|markets)=\d+"
)


@pytest.fixture(scope="module")
def fleet_with_flower(tmp_path_factory, redis_url):
    """Flower first (it only sees events sent after it connects), then a short fleet run."""
    tmp = tmp_path_factory.mktemp("flower-fleet")
    password = secrets.token_hex(16)
    fleet_file = tmp / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(FLEET))
    flower = FlowerProcess(redis_url, tmp / "flower.log", password)
    exchange_log = open(tmp / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(
            SCENARIO,
            "--paused",
            "--duration",
            "30m",
            "--tick-length",
            "30s",
            "--start-date",
            "2026-06-01T10:00",
            "--results",
            str(tmp / "exchange"),
        ),
        stdout=exchange_log,
        stderr=subprocess.STDOUT,
        env=exchange_env(redis_url),
    )
    workers: list[subprocess.Popen] = []
    worker_logs = []
    try:
        flower.wait_ready()
        connection = get_connection(redis_url)
        wait_for_exchange(connection.redis, exchange)
        app = make_app(redis_url)
        dispatcher = Dispatcher(load_fleet_config(fleet_file), connection, app)
        dispatcher.start(fresh=True)
        sent: list[tuple[str, str]] = []
        original_send = app.send_task

        def recording_send(name, args=None, queue=None, **options):
            sent.append((name, queue))
            return original_send(name, args=args, queue=queue, **options)

        app.send_task = recording_send
        # The compose entrypoint, as on two machines: index 0 and 1 of 2.
        for index, name in enumerate(("fa", "fb")):
            env = clean_env(
                GSY_FLEET_CONFIG=str(fleet_file),
                REDIS_URL=redis_url,
                GSY_FLEET_BROKER_URL=redis_url,
                GSY_FLEET_WORKER_INDEX=str(index),
                GSY_FLEET_WORKER_COUNT="2",
                GSY_FLEET_WORKER_NAME=name,
                GSY_FLEET_WORKER_LOG_LEVEL="WARNING",
            )
            worker_logs.append(open(tmp / f"{name}.log", "w"))
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "orchestrator.worker_entry"],
                    env=env,
                    cwd=ROOT,
                    stdout=worker_logs[-1],
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 60
        while True:
            metrics = requests.get(flower.url + "/metrics", timeout=5).text
            if all(f'flower_worker_online{{worker="{name}@' in metrics for name in ("fa", "fb")):
                break
            assert time.monotonic() < deadline, "Flower did not see both workers come online"
            assert all(worker.poll() is None for worker in workers), "a worker exited while starting"
            time.sleep(0.5)
        connection.publish(channels.simulation_control("resume"), {"transaction_id": "browser-test"})
        runner = threading.Thread(target=dispatcher.run, daemon=True)
        runner.start()
        assert exchange.wait(timeout=180) == 0
        runner.join(timeout=30)
        deadline = time.monotonic() + 30
        while dispatcher.store.counters().get("tasks_done", 0) < dispatcher.tasks_sent and time.monotonic() < deadline:
            time.sleep(0.2)
        yield {"flower": flower, "password": password, "dispatcher": dispatcher, "sent": sent, "tmp": tmp}
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for log in worker_logs:
            log.close()
        if exchange.poll() is None:
            exchange.kill()
            exchange.wait()
        exchange_log.close()
        flower.stop()


def flower_market_tasks(run: dict, expected: int, timeout: float = 15.0) -> list[dict]:
    """Flower's market-slot tasks, once it has all of them finished (its events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(
            run["flower"].url + "/api/tasks",
            params={"taskname": "workers.on_market_slot"},
            auth=("fleet-ops", run["password"]),
            timeout=10,
        )
        assert response.status_code == 200
        tasks = list(response.json().values())
        if (
            len(tasks) >= expected and all(task["state"] == "SUCCESS" for task in tasks)
        ) or time.monotonic() > deadline:
            return tasks
        time.sleep(0.3)


def test_flower_api_has_the_shard_tasks(fleet_with_flower):
    """Flower received the tasks' events: every market-slot task, with its shard in the args."""
    run = fleet_with_flower
    expected = [queue for name, queue in run["sent"] if name == "workers.on_market_slot"]
    assert len(run["dispatcher"].slots_seen) == 2 and len(expected) >= 4
    tasks = flower_market_tasks(run, len(expected))
    assert len(tasks) == len(expected)
    assert {task["state"] for task in tasks} == {"SUCCESS"}
    matches = [SHARD_ARGS.search(task["args"]) for task in tasks]
    assert all(matches), [task["args"] for task in tasks]
    assert sorted(match["shard"] for match in matches) == sorted(expected)
    assert {match["slot"] for match in matches} == {"2026-06-01T10:00", "2026-06-01T10:15"}
    # Each worker ran only its machine's shard (index 0 of 2 -> shard-0, 1 of 2 -> shard-1).
    by_worker = {(task["worker"].split("@")[0], match["shard"]) for task, match in zip(tasks, matches, strict=True)}
    assert by_worker == {("fa", "shard-0"), ("fb", "shard-1")}


def test_tasks_page_lists_shard_tasks_in_chromium(fleet_with_flower):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = chromium_setup()
    run = fleet_with_flower
    flower_market_tasks(run, sum(1 for name, _ in run["sent"] if name == "workers.on_market_slot"))
    driver = open_browser(browser, driver_path, "fleet-ops", run["password"])
    try:
        driver.get(run["flower"].url + "/tasks?name=workers.on_market_slot")

        def market_rows(drv) -> list[str]:
            rows = [row.text for row in drv.find_elements(By.CSS_SELECTOR, "#tasks-table tbody tr")]
            return [row for row in rows if "workers.on_market_slot" in row] or False

        rows = WebDriverWait(driver, 30, poll_frequency=0.3).until(market_rows)
        # The args cell of each row holds the dispatcher's shard summary.
        args = driver.execute_script(
            "const column = Array.from(document.querySelectorAll('#tasks-table thead th'))"
            ".findIndex(th => th.dataset.column === 'args');"
            "return Array.from(document.querySelectorAll('#tasks-table tbody tr'),"
            " row => row.cells[column].textContent);"
        )
        matches = [SHARD_ARGS.search(text) for text in args]
        assert len(args) == len(rows) and all(matches), f"a row without readable shard args: {args}"
        assert {match["aggregator"] for match in matches} <= {"households", "operator"}
        assert {match["shard"] for match in matches} == {"shard-0", "shard-1"}
        assert all("SUCCESS" in row for row in rows)
        columns = driver.execute_script(
            "return Array.from(document.querySelectorAll('#tasks-table thead th'), th => th.dataset.column)"
        )
        assert "args" in columns and "worker" in columns
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 10_000
        print(f"\nFlower tasks page screenshot: {SCREENSHOT}")
    finally:
        driver.quit()
