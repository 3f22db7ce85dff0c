"""``gsy-e-sdk fleet dispatch`` and ``gsy-e-sdk fleet run``."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import click

from gsy_e_sdk.wire.redis_connection import get_connection
from orchestrator.celery_app import make_app
from orchestrator.cli_options import fleet_redis_url, load_or_exit
from orchestrator.config import FleetConfig, FleetConfigError
from orchestrator.dispatcher import Dispatcher, ReaderDied
from orchestrator.metrics import serve_metrics
from orchestrator.processes import LocalWorkers, sigterm_as_interrupt
from orchestrator.state import StateStore
from orchestrator.worker_entry import worker_command

logger = logging.getLogger(__name__)


def start_dispatcher(config: FleetConfig, redis_url: str, on_slot=None, fresh: bool = False) -> Dispatcher:
    app = make_app(config.broker_url or redis_url)
    dispatcher = Dispatcher(config, get_connection(redis_url), app, on_slot=on_slot)
    try:
        dispatcher.start(fresh=fresh)
    except FleetConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    return dispatcher


def run_or_exit(dispatcher: Dispatcher) -> None:
    """Dispatch until the run ends; a dead event reader ends the command with exit code 1."""
    try:
        dispatcher.run()
    except ReaderDied as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


def worker_env(config_path: Path, config: FleetConfig, redis_url: str) -> dict[str, str]:
    return {
        "GSY_FLEET_CONFIG": str(config_path.resolve()),
        "REDIS_URL": redis_url,
        "GSY_FLEET_BROKER_URL": config.broker_url or redis_url,
    }


@click.group("fleet")
def fleet_group() -> None:
    """Run a fleet of assets with Celery workers."""


redis_option = click.option(
    "--redis-url",
    envvar="REDIS_URL",
    default=None,
    help="The exchange's Redis (default: the config's, else 127.0.0.1:6379).",
)


metrics_option = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="GSY_FLEET_METRICS_PORT",
    help="Serve the fleet's Prometheus metrics on this port [env GSY_FLEET_METRICS_PORT].",
)
metrics_address_option = click.option(
    "--metrics-address", default="127.0.0.1", show_default=True, envvar="GSY_FLEET_METRICS_ADDRESS"
)


@fleet_group.command("dispatch")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@redis_option
@metrics_option
@metrics_address_option
def dispatch_command(config_path: Path, redis_url: str | None, metrics_port: int | None, metrics_address: str) -> None:
    """Attach the fleet and fan exchange events out to the shard queues (workers run elsewhere)."""
    config = load_or_exit(config_path)
    url = fleet_redis_url(config, redis_url)
    dispatcher = start_dispatcher(config, url)
    if metrics_port is not None:
        serve_metrics(dispatcher.store, config.name, metrics_port, metrics_address)
    click.echo(f"dispatching {len(dispatcher.aggregators)} aggregators to {config.shards} shard queues", err=True)
    run_or_exit(dispatcher)
    click.echo(f"finished: {dispatcher.tasks_sent} tasks over {len(dispatcher.slots_seen)} slots", err=True)


@fleet_group.command("metrics")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@redis_option
@click.option("--port", type=click.IntRange(1, 65535), default=9108, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def metrics_command(config_path: Path, redis_url: str | None, port: int, address: str) -> None:
    """Serve a fleet's Prometheus metrics from its Redis (no dispatcher needed)."""
    config = load_or_exit(config_path)
    store = StateStore(get_connection(fleet_redis_url(config, redis_url)).redis, config.name)
    serve_metrics(store, config.name, port, address)
    click.echo(f"metrics of fleet {config.name} on http://{address}:{port}/metrics", err=True)
    threading.Event().wait()


@fleet_group.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@redis_option
@metrics_option
@metrics_address_option
def run_command(
    config_path: Path, workers: int, redis_url: str | None, metrics_port: int | None, metrics_address: str
) -> None:
    """The dispatcher plus N local worker processes."""
    config = load_or_exit(config_path)
    url = fleet_redis_url(config, redis_url)
    dispatcher = start_dispatcher(config, url)
    if metrics_port is not None:
        serve_metrics(dispatcher.store, config.name, metrics_port, metrics_address)
    pool = LocalWorkers(dispatcher.app, workers, config.shards, worker_env(config_path, config, url))
    with sigterm_as_interrupt():
        try:
            pool.start()
            run_or_exit(dispatcher)
        finally:
            pool.stop()
    click.echo(f"finished: {dispatcher.tasks_sent} tasks over {len(dispatcher.slots_seen)} slots", err=True)


fleet_group.add_command(worker_command)
