"""Errors, not tracebacks (issue 16): every CLI, run as a real subprocess, says what is wrong in
one ``Error:`` line, exits 2, and does so quickly.

Nothing listening at ``REDIS_URL`` fails within seconds naming the URL (password hidden); a
worker gives its broker a bounded wait; flags are blamed for their own values; a fleet file's
mistakes are all listed; ``--redis-url`` beats env ``REDIS_URL``, which beats the fleet file;
an operator command before the fleet trades says so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import yaml

from orchestrator.state import StateStore
from tests.processes import Proc

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
FAST_S = 5.0  # every "nothing listens" error comes within this
PASSWORD = "hunter2-not-shown"
FLEET = {
    "aggregators": [{"name": "households", "assets": ["Load *", "PV *"]}],
    "strategies": {"Load": {"name": "price_ramp"}, "PV": {"name": "price_ramp"}},
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _nowhere() -> str:
    """A Redis URL with a password where nothing listens."""
    return f"redis://:{PASSWORD}@127.0.0.1:{_closed_port()}/0"


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without any Redis, broker or credentials of its own."""
    dropped = ("REDIS_URL", "GSY_FLEET_", "API_CLIENT_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(dropped)}, **extra}


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gsy_e_sdk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else _env(),
        cwd=ROOT,
    )
    return result, time.monotonic() - started


def _one_error(result: subprocess.CompletedProcess) -> str:
    """The one ``Error:`` line of a run that exited 2 without a traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture()
def fleet_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"name": f"errors-{uuid.uuid4().hex[:8]}", **FLEET}))
    return path


def _fleet_commands(fleet: Path) -> list[list[str]]:
    config = ["--config", str(fleet)]
    return [
        ["fleet", "run", *config],
        ["fleet", "dispatch", *config],
        ["fleet", "metrics", *config],
        ["enqueue", *config, "--wait", "order", "PV 1 (4kW)", "--side", "offer", "--energy", "1", "--rate", "5"],
        ["run", "--setup", "test_redis_aggregator", "--run-on-redis"],
        ["exchange", "run", "--scenario", str(SCENARIO)],
        ["exchange", "http", "--http-port", str(_closed_port())],
    ]


def test_nothing_listening_at_redis_url_is_one_line_within_seconds(fleet_file: Path) -> None:
    for args in _fleet_commands(fleet_file):
        url = _nowhere()
        result, elapsed = _cli(*args, env=_env(REDIS_URL=url))
        assert result.stderr.splitlines() == [_one_error(result)], (args, result.stderr)
        port = url.rsplit(":", 1)[1].split("/")[0]
        assert result.stderr.startswith(f"Error: no Redis answers at redis://:***@127.0.0.1:{port}/0"), args
        assert PASSWORD not in result.stderr + result.stdout, args
        assert elapsed < FAST_S, (args, elapsed)


def test_the_flag_names_the_redis_too(fleet_file: Path) -> None:
    url = _nowhere()
    result, elapsed = _cli("fleet", "dispatch", "--config", str(fleet_file), "--redis-url", url)
    assert _one_error(result).startswith("Error: no Redis answers at redis://:***@") and elapsed < FAST_S


def test_a_worker_without_its_broker_says_so_and_stops_after_a_bounded_wait(fleet_file: Path) -> None:
    result, elapsed = _cli("fleet", "worker", "--config", str(fleet_file), env=_env(REDIS_URL=_nowhere()))
    assert result.stderr.splitlines() == [_one_error(result)]
    assert "(the Celery broker) within 10 s" in result.stderr and PASSWORD not in result.stderr
    assert 10 <= elapsed < 10 + FAST_S


def test_redis_url_is_the_flag_then_env_then_the_fleet_file(tmp_path: Path) -> None:
    from_file, from_env, from_flag = (f"redis://127.0.0.1:{_closed_port()}" for _ in range(3))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({**FLEET, "exchange": {"redis_url": from_file}}))
    for args, env, chosen in (
        (["--redis-url", from_flag], _env(REDIS_URL=from_env), from_flag),
        ([], _env(REDIS_URL=from_env), from_env),
        ([], _env(), from_file),
    ):
        result, _ = _cli("fleet", "dispatch", "--config", str(fleet), *args, env=env)
        assert _one_error(result).startswith(f"Error: no Redis answers at {chosen}:"), (args, result.stderr)


def test_every_mistake_of_a_fleet_file_is_listed_with_its_location(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        yaml.safe_dump(
            {
                "name": "bad name",
                "shards": 0,
                "max_assets_per_task": "x",
                "task_timeout": -1,
                "colour": "red",
                "exchange": {"mode": "pigeon", "redis_url": 5},
                "aggregators": [{"name": ""}, {"name": "b", "assets": 5}],
                "strategies": {"Load": {"name": "price_ramp", "params": {"initial_buying_rate": -1, "colour": 2}}},
            }
        )
    )
    result, elapsed = _cli("fleet", "dispatch", "--config", str(fleet), env=_env(REDIS_URL=_nowhere()))
    assert result.returncode == 2 and "Traceback" not in result.stderr and elapsed < FAST_S
    lines = result.stderr.splitlines()
    assert all(line.startswith("Error: invalid fleet config at ") for line in lines), lines
    locations = {line.removeprefix("Error: invalid fleet config at ").split(":")[0] for line in lines}
    assert locations == {
        "colour",
        "name",
        "shards",
        "max_assets_per_task",
        "task_timeout",
        "exchange.mode",
        "exchange.redis_url",
        "aggregators.0.name",
        "aggregators.1.assets",
        "strategies.Load.initial_buying_rate",
        "strategies.Load.colour",
    }
    assert "more errors" not in result.stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--duration", "0"),
        ("--duration", "-1h"),
        ("--duration", "soon"),
        ("--duration", "1s"),  # shorter than the scenario's slot
        ("--slot-length", "0"),
        ("--slot-length", "7s"),
        ("--tick-length", "1h"),  # longer than a tenth of the scenario's slot
        ("--token-lifetime", "0"),
        ("--tick-deadline", "-2s"),
        ("--max-batch-commands", "0"),
        ("--rate-limit", "nan"),
    ],
)
def test_exchange_flags_are_blamed_for_their_values(flag: str, value: str) -> None:
    result, elapsed = _cli(
        "exchange", "run", "--scenario", str(SCENARIO), "--redis-url", _nowhere(), flag, value, timeout=30
    )
    assert _one_error(result).startswith(f"Error: Invalid value for '{flag}': ") and elapsed < FAST_S
    assert "scenario at" not in result.stderr


def test_a_zero_tick_deadline_is_a_valid_value() -> None:
    result, _ = _cli("exchange", "run", "--scenario", str(SCENARIO), "--redis-url", _nowhere(), "--tick-deadline", "0")
    assert _one_error(result).startswith("Error: no Redis answers at ")


def test_a_redis_setup_without_run_on_redis_names_what_it_needs() -> None:
    result, elapsed = _cli("run", "--setup", "test_redis_aggregator")
    line = _one_error(result)
    assert result.stderr.splitlines() == [line] and elapsed < FAST_S
    for needed in (
        "--run-on-redis",
        "API_CLIENT_SIMULATION_ID",
        "API_CLIENT_DOMAIN_NAME",
        "API_CLIENT_WEBSOCKET_DOMAIN_NAME",
        "API_CLIENT_USERNAME",
        "API_CLIENT_PASSWORD",
    ):
        assert needed in line


def test_a_password_on_the_command_line_still_works_with_a_deprecation_warning(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "quiet_setup.py").write_text("import os\nassert os.environ['API_CLIENT_PASSWORD'] == 's3cret-pw'\n")
    args = ["run", "-b", str(tmp_path), "--setup", "quiet_setup", "--run-on-redis", "--redis-url", redis_url]
    result, _ = _cli(*args, "-u", "alice", "-p", "s3cret-pw")
    assert result.returncode == 0, result.stderr
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("Warning: -p/--password is deprecated") and "API_CLIENT_PASSWORD" in warning
    assert "prompted" in warning and "s3cret-pw" not in result.stderr
    quiet, _ = _cli(*args, env=_env(API_CLIENT_USERNAME="alice", API_CLIENT_PASSWORD="s3cret-pw"))
    assert quiet.returncode == 0 and quiet.stderr == ""  # from the environment: no warning


@pytest.fixture()
def attached_fleet(start_exchange, redis_url: str, fleet_file: Path, tmp_path: Path):
    """A dispatcher attached to a paused exchange: the fleet is placed, no market event yet."""
    start_exchange(SCENARIO, "--paused")
    name = yaml.safe_load(fleet_file.read_text())["name"]
    dispatcher = Proc(
        [sys.executable, "-m", "gsy_e_sdk", "fleet", "dispatch", "--config", str(fleet_file), "--redis-url", redis_url],
        tmp_path / "dispatcher.log",
    )
    client = redis.Redis.from_url(redis_url)
    try:
        store = StateStore(client, name)
        deadline = time.monotonic() + 60
        while not store.meta("placements"):
            assert dispatcher.alive() and time.monotonic() < deadline, dispatcher.output()
            time.sleep(0.1)
        yield fleet_file
    finally:
        dispatcher.stop()
        client.close()


def test_operator_commands_before_the_first_market_event_say_the_fleet_is_not_trading(
    attached_fleet: Path, redis_url: str
) -> None:
    enqueue = ["enqueue", "--config", str(attached_fleet), "--redis-url", redis_url]
    for command in (
        ["set-param", "PV 1 (4kW)", "--param", "final_selling_rate=11"],
        ["set-param", "--aggregator", "households", "--param", "final_selling_rate=11"],
        ["--wait", "order", "PV 1 (4kW)", "--side", "offer", "--energy", "0.1", "--rate", "5"],
    ):
        result, elapsed = _cli(*enqueue, *command)
        line = _one_error(result)
        assert "no market event received yet: the fleet has not started trading" in line, (command, line)
        assert result.stdout == "" and elapsed < FAST_S  # refused before anything was sent
