"""The fleet's commands as an operator stops them, and the Redis password they are given.

- SIGTERM (``kill``, ``docker stop``, systemd) to ``gsy-e-sdk demo`` or ``gsy-e-sdk fleet run``
  stops their Celery workers and their exchange as Ctrl-C does, and the exchange's results are
  written: no orphan keeps consuming a shard queue.
- A password in the Redis URL never reaches a command line (``ps``), stdout/stderr or a file the
  demo writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis
import yaml

from gsy_local_exchange.embedded_redis import find_redis_server_binary
from orchestrator.processes import exchange_command, exchange_env, wait_for_exchange
from tests.reliability.fleet_harness import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
PASSWORD = "redis-password-never-shown-4711"


@pytest.fixture()
def password_redis(tmp_path):
    """A redis-server requiring a password, configured from a file (so not on its own argv)."""
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    conf = tmp_path / "redis.conf"
    conf.write_text(f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {tmp_path}\nrequirepass {PASSWORD}\n')
    process = subprocess.Popen(
        [find_redis_server_binary(), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_until(lambda: _pings(client), 10, "the password-protected redis")
    yield url
    client.close()
    process.terminate()
    process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _command_lines_with(secret: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if secret in line:
            found.append(line)
    return found


def _descendants(process: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


def _gone(processes: list[psutil.Process]) -> bool:
    for child in processes:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def test_sigterm_to_the_demo_stops_its_workers_and_exchange_and_keeps_the_password_hidden(password_redis, tmp_path):
    results = tmp_path / "results"
    demo = subprocess.Popen(
        [sys.executable, "-m", "gsy_e_sdk", "demo", "--duration", "1d", "--results", str(results)],
        env={**os.environ, "REDIS_URL": password_redis},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Running: the exchange and both workers are up and the fleet has handled events.
        client = redis.Redis.from_url(password_redis)
        wait_until(
            lambda: int(client.hget("gsy:fleet:community-demo:counters", "tasks_done") or 0) > 0,
            90,
            "the demo's first tasks",
        )
        children = _descendants(demo)
        assert len([c for c in children if "celery" in " ".join(c.cmdline())]) >= 2
        assert not _command_lines_with(PASSWORD), "the Redis password is on a command line"
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    wait_until(lambda: _gone(children), 20, "the demo's workers and exchange to exit")
    assert PASSWORD not in output
    for path in results.rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(errors="replace"), f"the password is in {path}"
    # The exchange was stopped like Ctrl-C stops it: its results were written.
    trades = results / "exchange" / "trades.csv"
    assert trades.read_text().startswith("slot"), "trades.csv lost its header"
    assert (results / "exchange" / "summary.json").is_file()


def test_sigterm_to_fleet_run_stops_its_workers(redis_url, tmp_path):
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        yaml.safe_dump(
            {
                "name": "sigterm-fleet",
                "shards": 2,
                "aggregators": [{"name": "households", "assets": ["Load *", "PV *"]}],
                "strategies": {"Load": {"name": "price_ramp"}, "PV": {"name": "price_ramp"}},
            }
        )
    )
    exchange = subprocess.Popen(
        exchange_command(SCENARIO, "--paused", "--duration", "1h"),
        env=exchange_env(redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    fleet = None
    try:
        wait_for_exchange(redis.Redis.from_url(redis_url), exchange)
        fleet = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gsy_e_sdk",
                "fleet",
                "run",
                "--config",
                str(fleet_file),
                "--workers",
                "2",
                "--redis-url",
                redis_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_until(
            lambda: len([c for c in _descendants(fleet) if "celery" in " ".join(c.cmdline())]) >= 2, 60, "two workers"
        )
        time.sleep(3)  # let them come up fully (the run is then in the dispatcher's loop)
        workers = _descendants(fleet)
        fleet.send_signal(signal.SIGTERM)
        fleet.communicate(timeout=40)
        wait_until(lambda: _gone(workers), 20, "the fleet's workers to exit")
    finally:
        for process in (fleet, exchange):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
