"""Flower for the fleet (``orchestrator/flower.py``): a real Flower process on the test Redis.

Basic auth must come from the environment only, be enforced (401 without, 200 with), never show
up in the process's argv or output, and Flower's Prometheus endpoint must answer.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from orchestrator.celery_app import make_app
from orchestrator.dispatcher import task_argsrepr
from orchestrator.flower import flower_command
from orchestrator.flower_auth import basic_auth_from_env
from orchestrator.messages import AssetItem, MarketItem, SliceTask
from orchestrator.processes import worker_command
from tests.processes import Proc

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER = "fleet-ops"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any Flower credentials, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("GSY_FLOWER_BASIC_AUTH", "FLOWER_BASIC_AUTH", "GSY_FLOWER_BASIC_AUTH_FILE")
    }
    env.update(extra, PYTHONUNBUFFERED="1")
    return env


class FlowerProcess(Proc):
    """``python -m orchestrator.flower`` (the ``flower_command`` entrypoint) in a subprocess."""

    def __init__(self, redis_url: str, log_path: Path, password: str | None, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        auth = {"GSY_FLOWER_BASIC_AUTH": f"{USER}:{password}"} if password else {}
        super().__init__(
            [sys.executable, "-m", "orchestrator.flower", "--port", str(self.port), "--address", "127.0.0.1", *args],
            log_path,
            clean_env(GSY_FLEET_BROKER_URL=redis_url, **auth),
            inherit_env=False,
        )

    def wait_ready(self, timeout: float = 30.0) -> FlowerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flower exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/healthcheck", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"flower did not answer within {timeout:g} s:\n{self.output()}")


@pytest.fixture(scope="module")
def password() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="module")
def flower(redis_url: str, password: str, tmp_path_factory) -> Iterator[FlowerProcess]:
    process = FlowerProcess(redis_url, tmp_path_factory.mktemp("flower") / "flower.log", password)
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def test_requests_without_credentials_are_refused(flower: FlowerProcess):
    for path in ("/", "/tasks", "/api/workers"):
        response = requests.get(flower.url + path, timeout=5)
        assert response.status_code == 401, path
    assert requests.get(flower.url + "/", timeout=5).headers.get("WWW-Authenticate", "").startswith("Basic")


def test_wrong_password_is_refused_and_the_right_one_accepted(flower: FlowerProcess, password: str):
    assert requests.get(flower.url + "/", auth=(USER, password + "x"), timeout=5).status_code == 401
    assert requests.get(flower.url + "/", auth=("someone-else", password), timeout=5).status_code == 401
    page = requests.get(flower.url + "/tasks", auth=(USER, password), timeout=5)
    assert page.status_code == 200
    # The tasks page shows the args column (where the dispatcher's shard summary appears).
    assert 'data-column="args"' in page.text


def test_prometheus_metrics_respond(flower: FlowerProcess):
    response = requests.get(flower.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert "flower_events_total" in response.text and "flower_worker_online" in response.text


def test_the_secret_is_neither_in_argv_nor_in_the_output(flower: FlowerProcess, password: str):
    cmdline = Path(f"/proc/{flower.process.pid}/cmdline").read_bytes().decode(errors="replace")
    assert "orchestrator.flower" in cmdline and password not in cmdline
    requests.get(flower.url + "/", auth=(USER, password), timeout=5)
    output = flower.output()
    assert "basic auth on" in output and password not in output


def test_flower_watches_the_fleet_broker(flower: FlowerProcess, password: str, redis_url: str, tmp_path: Path):
    """A worker on the same broker shows up in Flower (events reach it)."""
    env = clean_env(GSY_FLEET_BROKER_URL=redis_url, REDIS_URL=redis_url, GSY_FLEET_CONFIG="/nonexistent")
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        worker_command(["flower-probe"], "flowerprobe"), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        seen = False
        while time.monotonic() < deadline and not seen:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            metrics = requests.get(flower.url + "/metrics", timeout=5).text
            seen = 'flower_worker_online{worker="flowerprobe@' in metrics
            time.sleep(0.5)
        assert seen, "Flower never saw the worker's events"
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        log.close()


def test_refuses_to_start_without_auth(redis_url: str):
    result = CliRunner().invoke(
        flower_command,
        ["--port", str(free_port())],
        env={
            "GSY_FLOWER_BASIC_AUTH": "",
            "FLOWER_BASIC_AUTH": "",
            "GSY_FLOWER_BASIC_AUTH_FILE": "",
            "GSY_FLEET_BROKER_URL": redis_url,
        },
    )
    assert result.exit_code == 2
    assert "GSY_FLOWER_BASIC_AUTH" in result.output and "--no-auth" in result.output


def test_malformed_or_conflicting_auth_is_refused_without_echoing_it(redis_url: str):
    runner = CliRunner()
    malformed = runner.invoke(flower_command, [], env={"GSY_FLOWER_BASIC_AUTH": "just-a-secret-token"})
    assert malformed.exit_code == 2 and "user:password" in malformed.output
    assert "just-a-secret-token" not in malformed.output
    conflicting = runner.invoke(flower_command, ["--no-auth"], env={"GSY_FLOWER_BASIC_AUTH": "a:b"})
    assert conflicting.exit_code == 2 and "--no-auth" in conflicting.output


def test_no_auth_must_be_explicit_and_warns(redis_url: str, tmp_path: Path):
    process = FlowerProcess(redis_url, tmp_path / "open.log", None, "--no-auth")
    try:
        process.wait_ready()
        assert requests.get(process.url + "/", timeout=5).status_code == 200
        assert "WITHOUT authentication" in process.output()
    finally:
        process.stop()


def test_credentials_come_from_either_variable_or_a_file(tmp_path: Path):
    assert basic_auth_from_env({"FLOWER_BASIC_AUTH": "a:b"}) == ("FLOWER_BASIC_AUTH", ["a:b"])
    assert basic_auth_from_env({"GSY_FLOWER_BASIC_AUTH": "a:b, c:d:e", "FLOWER_BASIC_AUTH": "x:y"}) == (
        "GSY_FLOWER_BASIC_AUTH",
        ["a:b", "c:d:e"],
    )
    secret_file = tmp_path / "auth"
    secret_file.write_text("ops:from-file\n")
    assert basic_auth_from_env({"GSY_FLOWER_BASIC_AUTH_FILE": str(secret_file)})[1] == ["ops:from-file"]
    assert basic_auth_from_env({}) is None


def test_tasks_are_readable_in_flower():
    """Task events are on, names are the documented ones and args carry aggregator, slot, tick and shard."""
    app = make_app("redis://127.0.0.1:1/0")
    assert app.conf.worker_send_task_events and app.conf.task_send_sent_event
    assert "-E" in worker_command(["shard-0"], "w")
    task = SliceTask(
        fleet="f",
        aggregator="households",
        aggregator_uuid="u",
        slice=2,
        shard=1,
        event="tick",
        slot="2026-06-01T10:00",
        completion=30,
        dispatched_at=0.0,
        transaction_id="t",
        assets=[AssetItem(uuid="a", name="Load 1", kind="Load", info={"big": "x" * 5000})],
    )
    summary = task_argsrepr([task.model_dump()])
    assert summary == "households[2] shard-1 tick slot=2026-06-01T10:00 tick=30% assets=1"
    finish = task.model_copy(update={"event": "finish", "assets": [], "shard": 0, "slice": 0})
    assert task_argsrepr([finish.model_dump()]) == "households[0] shard-0 finish slot=2026-06-01T10:00 tick=30%"
    # A shard's burst: the first slice, how many more, and the totals.
    other = task.model_copy(update={"aggregator": "offices", "slice": 0, "markets": [MarketItem(uuid="m", name="C")]})
    assert (
        task_argsrepr([task.model_dump(), other.model_dump()])
        == "households[2]+1 shard-1 tick slot=2026-06-01T10:00 tick=30% assets=2 markets=1"
    )


def _celery_flower(redis_url: str, log_path: Path, **env: str) -> tuple[Proc, str]:
    port = free_port()
    process = Proc(
        [sys.executable, "-m", "celery", "-A", "workers", "flower", f"--port={port}", "--address=127.0.0.1"],
        log_path,
        clean_env(GSY_FLEET_BROKER_URL=redis_url, **env),
        inherit_env=False,
    )
    return process, f"http://127.0.0.1:{port}"


def test_plain_celery_flower_takes_the_fleet_credentials_and_refuses_without(redis_url, password, tmp_path):
    """``celery -A workers flower``, which the README used to offer, served the UI with no login."""
    refused, _ = _celery_flower(redis_url, tmp_path / "refused.log")
    assert refused.process.wait(timeout=30) != 0
    assert "GSY_FLOWER_BASIC_AUTH" in refused.output()
    served, url = _celery_flower(redis_url, tmp_path / "served.log", GSY_FLOWER_BASIC_AUTH=f"{USER}:{password}")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert served.process.poll() is None, served.output()
            try:
                response = requests.get(f"{url}/tasks", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, served.output()
                time.sleep(0.2)
        assert response.status_code == 401
        assert requests.get(f"{url}/tasks", auth=(USER, password), timeout=5).status_code == 200
        assert password not in served.output()
    finally:
        served.stop()
