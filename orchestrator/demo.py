"""``gsy-e-sdk demo``: the whole product on one machine in a few minutes.

Redis (embedded when none is given), the local exchange with ``community.json``, the dispatcher
and two Celery workers trade one simulated day at fast pace; then a summary table and
``results/`` with CSV, JSON and a PNG plot.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import click
import redis

from gsy_e_sdk.wire import channels
from gsy_local_exchange.durations import parse_duration
from gsy_local_exchange.embedded_redis import RedisUnavailable, redis_url
from gsy_local_exchange.scenario import load_scenario
from orchestrator.cli import run_or_exit, start_dispatcher, worker_env
from orchestrator.cli_options import load_or_exit
from orchestrator.processes import (
    LocalWorkers,
    exchange_command,
    exchange_env,
    sigterm_as_interrupt,
    stop_processes,
    wait_for_exchange,
)
from orchestrator.report import build_summary, per_slot, render_table, write_outputs

logger = logging.getLogger(__name__)
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = PACKAGE_ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
DEFAULT_FLEET = PACKAGE_ROOT / "orchestrator" / "fleets" / "community.yaml"


@click.command("demo")
@click.option(
    "--scenario", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_SCENARIO, show_default=True
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_FLEET,
    show_default=True,
    help="Fleet config.",
)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--duration", default="1d", show_default=True, help="Simulated duration.")
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
)
@click.option(
    "--redis-url",
    "redis_url_option",
    envvar="REDIS_URL",
    default=None,
    help="Default: 6379 if it answers, else an embedded server.",
)
def demo_command(
    scenario: Path, config_path: Path, workers: int, duration: str, results_dir: Path, redis_url_option: str | None
) -> None:
    """Run the local exchange and a Celery fleet for one simulated day and report."""
    config = load_or_exit(config_path)
    started = time.monotonic()
    try:
        with sigterm_as_interrupt(), redis_url(redis_url_option) as url:
            _run(scenario, config_path, config, workers, duration, results_dir, url, started)
    except RedisUnavailable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


def _run(
    scenario: Path, config_path: Path, config, workers: int, duration: str, results_dir: Path, url: str, started: float
) -> None:
    slot_count = _slot_count(scenario, duration)
    exchange_dir = results_dir / "exchange"
    logs = results_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    client = redis.Redis.from_url(url)
    exchange_log = open(logs / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(
            scenario,
            "--strict-reference",
            "--pace",
            "fast",
            "--paused",
            "--duration",
            duration,
            "--results",
            str(exchange_dir),
        ),
        stdout=exchange_log,
        stderr=subprocess.STDOUT,
        env=exchange_env(url),
    )
    pool = None
    try:
        try:
            wait_for_exchange(client, exchange)
        except RuntimeError as exc:
            raise click.ClickException(f"{exc}; see {logs / 'exchange.log'}") from None
        with click.progressbar(length=slot_count, label="slots", show_pos=True) as bar:
            dispatcher = start_dispatcher(config, url, on_slot=lambda _slot: bar.update(1), fresh=True)
            pool = LocalWorkers(
                dispatcher.app, workers, config.shards, worker_env(config_path, config, url), log_dir=logs
            ).start()
            client.publish(channels.simulation_control("resume"), json.dumps({"transaction_id": "demo-resume"}))
            run_or_exit(dispatcher)
        exchange.wait(timeout=60)
        _drain(dispatcher, pool)
        exchange_summary = json.loads((exchange_dir / "summary.json").read_text())
        summary = build_summary(
            exchange_summary, dispatcher.store.latencies(), dispatcher.store.counters(), time.monotonic() - started
        )
        outputs = write_outputs(results_dir, summary, per_slot(exchange_dir / "trades.csv"))
    finally:
        if pool is not None:
            pool.stop()
        stop_processes([exchange], timeout=10)
        exchange_log.close()
        client.close()
    click.echo(render_table(summary))
    click.echo("results: " + ", ".join(str(path) for path in [exchange_dir / "trades.csv", *outputs]))


def _slot_count(scenario: Path, duration: str) -> int:
    settings = load_scenario(scenario).settings
    return max(int(parse_duration(duration) / settings.slot_length), 1)


def _drain(dispatcher, pool: LocalWorkers, timeout: float = 20.0) -> None:
    """Let the workers finish the last events' tasks before reading metrics."""
    deadline = time.monotonic() + timeout
    expected = dispatcher.tasks_sent
    while time.monotonic() < deadline:
        if dispatcher.store.counters().get("tasks_done", 0) >= expected:
            return
        time.sleep(0.2)
