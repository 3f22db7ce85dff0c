"""``gsy-e-sdk fleet dispatch``, ``fleet run``, ``fleet metrics`` and ``fleet worker``."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import click

from gsy_e_sdk.wire.redis_connection import get_connection
from gsy_e_sdk.wire.redis_url import redis_url_option
from orchestrator.cli_options import exit_with, fleet_redis_url, load_or_exit, redis_option
from orchestrator.config import FleetConfig
from orchestrator.dispatcher import Dispatcher
from orchestrator.fleet_run import exchange_first_slot, exchange_label, run_fleet, run_or_exit, start_dispatcher
from orchestrator.metrics import serve_metrics
from orchestrator.processes import sigterm_as_interrupt
from orchestrator.report import fleet_summary, render_table
from orchestrator.sharding import aggregators_for_dispatcher
from orchestrator.state import StateStore
from orchestrator.worker_entry import worker_command

logger = logging.getLogger(__name__)

PART_INDEX_ENV = "GSY_FLEET_DISPATCHER_INDEX"
PART_COUNT_ENV = "GSY_FLEET_DISPATCHER_COUNT"


@click.group("fleet")
def fleet_group() -> None:
    """Run a fleet of assets with Celery workers."""


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
@click.option(
    "--part-index",
    type=int,
    default=None,
    envvar=PART_INDEX_ENV,
    help=f"This dispatcher's part, 0 to --part-count - 1 [env {PART_INDEX_ENV}; default 0].",
)
@click.option(
    "--part-count",
    type=int,
    default=None,
    envvar=PART_COUNT_ENV,
    help=f"Dispatchers sharing the fleet, each attaching a share of its aggregators [env {PART_COUNT_ENV}; default 1].",
)
def dispatch_command(
    config_path: Path,
    redis_url: str | None,
    metrics_port: int | None,
    metrics_address: str,
    part_index: int | None,
    part_count: int | None,
) -> None:
    """Attach the fleet and fan exchange events out to the shard queues (workers run elsewhere).

    \b
    A large fleet can be split between N dispatchers (any machines, the same fleet file): part I
    attaches and serves every N-th aggregator sorted by name, from the I-th, and only part 0
    watches the workers for the shard failover:
      gsy-e-sdk fleet dispatch --config fleet.yaml --part-index 0 --part-count 2
      gsy-e-sdk fleet dispatch --config fleet.yaml --part-index 1 --part-count 2
    """
    index, count = dispatcher_part(part_index, part_count)
    config = load_or_exit(config_path)
    part = config_of_part(config, index, count)
    url = fleet_redis_url(config, redis_url)
    dispatcher = start_dispatcher(part, url)
    if metrics_port is not None:
        serve_metrics(dispatcher.store, config.name, metrics_port, metrics_address)
    of_part = f" (part {index} of {count}: {', '.join(a.name for a in part.aggregators)})" if count > 1 else ""
    click.echo(
        f"dispatching {len(dispatcher.aggregators)} aggregators{of_part} to {config.shards} shard queues", err=True
    )
    run_or_exit(dispatcher, watch_workers=index == 0)
    click.echo(f"finished: {dispatcher.tasks_sent} tasks over {len(dispatcher.slots_seen)} slots", err=True)


def dispatcher_part(index: int | None, count: int | None) -> tuple[int, int]:
    """(index, count) of ``--part-index`` / ``--part-count``: both or neither (0 of 1)."""
    if index is None and count is None:
        return 0, 1
    if index is None or count is None:
        raise click.UsageError("--part-index and --part-count go together: set both or neither")
    if count < 1:
        raise click.UsageError(f"--part-count must be at least 1, got {count}")
    if not 0 <= index < count:
        raise click.UsageError(f"--part-index must be 0 to {count - 1} for --part-count {count}, got {index}")
    return index, count


def config_of_part(config: FleetConfig, index: int, count: int) -> FleetConfig:
    """The fleet file holding only the aggregators dispatcher ``index`` of ``count`` owns; exit 2 if none."""
    owned = set(aggregators_for_dispatcher((a.name for a in config.aggregators), index, count))
    if not owned:
        exit_with(
            f"dispatcher part {index} of {count} owns no aggregator: the fleet has {len(config.aggregators)}; "
            f"run at most {len(config.aggregators)} parts"
        )
    return config.model_copy(update={"aggregators": [a for a in config.aggregators if a.name in owned]})


@fleet_group.command("metrics")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@redis_option
@click.option("--port", type=click.IntRange(1, 65535), default=9108, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def metrics_command(config_path: Path, redis_url: str | None, port: int, address: str) -> None:
    """Serve a fleet's Prometheus metrics from its Redis (no dispatcher needed)."""
    config = load_or_exit(config_path)
    store = StateStore(get_connection(fleet_redis_url(config, redis_url, broker=False)).redis, config.name)
    serve_metrics(store, config.name, port, address)
    click.echo(f"metrics of fleet {config.name} on http://{address}:{port}/metrics", err=True)
    threading.Event().wait()


@fleet_group.command("run")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Fleet config."
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Local worker processes to start."
)
@click.option(
    "--local-exchange",
    "scenario",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also run the local exchange with this scenario (and Redis, when none answers), waiting for the fleet.",
)
@click.option(
    "--duration", default=None, help="With --local-exchange: simulated duration, e.g. 2h [default: the scenario's]."
)
@click.option(
    "--pace", default=None, help="With --local-exchange: fast, realtime or wall seconds per slot [default: fast]."
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Where the report goes.",
)
@redis_url_option(
    "The exchange's Redis, holding the fleet's state [env REDIS_URL]; default: the fleet file's "
    "exchange.redis_url, else 127.0.0.1:6379 (with --local-exchange: if it answers, else an embedded server)."
)
@metrics_option
@metrics_address_option
def run_command(
    config_path: Path,
    workers: int,
    scenario: Path | None,
    duration: str | None,
    pace: str | None,
    results_dir: Path,
    redis_url: str | None,
    metrics_port: int | None,
    metrics_address: str,
) -> None:
    """The dispatcher plus N local worker processes, with progress and a report at the end.

    \b
    All on this machine (Redis, the local exchange, the fleet; the report in results/):
      gsy-e-sdk fleet run --config fleet.yaml --local-exchange scenario.json
    With an exchange started elsewhere, which must wait for the fleet's areas
    (assets + markets; the start line says how many were attached):
      gsy-e-sdk exchange run --scenario scenario.json --start-when-selected N &
      gsy-e-sdk fleet run --config fleet.yaml
    """
    on_attached = []
    if metrics_port is not None:
        on_attached.append(
            lambda dispatcher: serve_metrics(dispatcher.store, dispatcher.config.name, metrics_port, metrics_address)
        )
    if scenario is not None:
        # Needs the exchange's extra, which a fleet run against an exchange started elsewhere does not.
        try:
            from orchestrator.local_run import plan_local_run, run_local  # noqa: PLC0415 - the exchange's extra
        except ModuleNotFoundError as exc:
            exit_with(
                f"--local-exchange needs the exchange extra (module {exc.name!r} is missing): "
                "pip install 'gsy-e-sdk[exchange]'"
            )

        run = plan_local_run(
            scenario,
            config_path,
            workers=workers,
            duration=duration,
            results=results_dir,
            pace=pace,
            scenario_option="--local-exchange",
        )
        run_local(run, redis_url, on_attached)
        return
    for option, value in (("--duration", duration), ("--pace", pace)):
        if value is not None:
            raise click.UsageError(f"{option} needs --local-exchange (an exchange started elsewhere has its own)")
    config = load_or_exit(config_path)
    url = fleet_redis_url(config, redis_url)
    logs = results_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sigterm_as_interrupt():
        dispatcher = run_fleet(
            config_path,
            config,
            url,
            workers,
            exchange=exchange_label(config, url, "the exchange started elsewhere"),
            total_slots=None,
            first_slot=exchange_first_slot(config, url),
            log_dir=logs,
            on_attached=on_attached,
        )
    _report_fleet_side(dispatcher, time.monotonic() - started, results_dir)


def _report_fleet_side(dispatcher: Dispatcher, wall_seconds: float, results_dir: Path) -> None:
    """The summary of a run on an exchange started elsewhere: what the fleet knows."""
    summary = fleet_summary(
        dispatcher.store.latencies(), dispatcher.store.counters(), wall_seconds, dispatcher.slots_seen
    )
    path = results_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    click.echo(render_table(summary))
    click.echo(f"results: {path}, {results_dir / 'logs'}/ (the fleet's side)")
    click.echo(
        "the exchange's own results (trades.csv, orders.csv, summary.json) are where that exchange writes "
        "them (its --results)"
    )


fleet_group.add_command(worker_command)
