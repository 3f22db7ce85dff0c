"""``gsy-e-sdk fleet worker``: one Celery worker whose shard queues come from the environment.

Why: ``docker compose up --scale worker=N`` starts N identical containers, so a worker cannot be
told its queues on its own command line. It computes them at start instead, in this order:

1. ``GSY_FLEET_WORKER_QUEUES=shard-0,shard-3``: exactly these queues;
2. ``GSY_FLEET_WORKER_INDEX=i`` and ``GSY_FLEET_WORKER_COUNT=n``: the shards of worker ``i`` of
   ``n`` (shards i, i+n, i+2n, ... as ``gsy-e-sdk fleet run`` assigns them), typically one index
   per machine so each machine owns a disjoint set of shards;
3. neither: every shard queue of the fleet (replicas compete for tasks; state lives in Redis,
   so any worker can take any shard).

Then it waits up to ``BROKER_WAIT_S`` (``gsy_e_sdk/wire/retry.py``) for its broker (env
``GSY_FLEET_BROKER_URL``, else the fleet file's ``broker_url``, else the exchange's Redis) and
replaces itself with the documented ``celery -A workers worker -Q ... -E`` command; with no
broker answering it says so in one line and exits 2, instead of Celery's 100 retries.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from gsy_e_sdk.wire.redis_url import REDIS_URL_ENV
from gsy_e_sdk.wire.retry import BROKER_WAIT_S
from orchestrator.celery_app import BROKER_ENV
from orchestrator.cli_options import load_or_exit, redis_option, require_or_exit
from orchestrator.processes import worker_command as celery_worker_command
from orchestrator.sharding import queue_name, shards_for_worker

logger = logging.getLogger(__name__)

QUEUES_ENV = "GSY_FLEET_WORKER_QUEUES"
INDEX_ENV = "GSY_FLEET_WORKER_INDEX"
COUNT_ENV = "GSY_FLEET_WORKER_COUNT"
_QUEUE = re.compile(r"^shard-(\d+)$")


class WorkerQueuesError(ValueError):
    """The environment names queues or an index that do not fit the fleet."""


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise WorkerQueuesError(f"{name} must be an integer, got {env[name]!r}") from None


def queues_from_env(env: Mapping[str, str], shards: int) -> list[str]:
    """The shard queues this worker consumes (see the module docstring for the rules)."""
    explicit = [part.strip() for part in env.get(QUEUES_ENV, "").split(",") if part.strip()]
    if explicit:
        for name in explicit:
            match = _QUEUE.match(name)
            if not match or int(match.group(1)) >= shards:
                raise WorkerQueuesError(
                    f"{QUEUES_ENV}: {name!r} is not a shard queue of this fleet (shard-0 .. shard-{shards - 1})"
                )
        return list(dict.fromkeys(explicit))
    has_index, has_count = bool(env.get(INDEX_ENV, "").strip()), bool(env.get(COUNT_ENV, "").strip())
    if has_index != has_count:
        raise WorkerQueuesError(f"set both {INDEX_ENV} and {COUNT_ENV}, or neither")
    if has_index:
        index, count = _int(env, INDEX_ENV), _int(env, COUNT_ENV)
        if count < 1 or not 0 <= index < count:
            raise WorkerQueuesError(f"need 0 <= {INDEX_ENV} < {COUNT_ENV}, got {index} and {count}")
        return [queue_name(shard) for shard in shards_for_worker(index, count, shards)]
    return [queue_name(shard) for shard in range(shards)]


WORKER_HELP = f"""One fleet worker: a Celery worker on shard queues of a fleet, for workers on other
machines than the dispatcher ('gsy-e-sdk fleet dispatch'); 'gsy-e-sdk fleet run' starts its own.

Every worker of a fleet needs the same fleet file (its shards and strategies) and reaches the
exchange's Redis, where the fleet keeps its state and sends its batches.

\b
Shard queues (shard-0 .. shard-<shards-1>), from the environment, so that identical containers
(docker compose --scale worker=N) can share them:
  {QUEUES_ENV}=shard-0,shard-3
      exactly these queues;
  {INDEX_ENV}=i and {COUNT_ENV}=n
      the shards of worker i of n: i, i+n, i+2n, ... (as 'fleet run' assigns them;
      one index per machine gives each machine its own shards);
  neither
      every shard of the fleet (replicas compete for the tasks).

\b
Broker: env {BROKER_ENV}, else the fleet file's broker_url, else the exchange's Redis
(--redis-url, else env REDIS_URL, else the fleet file's exchange.redis_url, else
127.0.0.1:6379). The worker waits up to {BROKER_WAIT_S:g} s for it, then becomes
'celery -A workers worker -Q QUEUES --pool threads --concurrency C -E' (see --print-only).

Concurrency: --concurrency threads per worker, each deciding one task (a shard's slices of one
burst of events) at a time.

\b
Example: the exchange and the dispatcher on one machine, two workers on two others:
  gsy-e-sdk fleet dispatch --config fleet.yaml --redis-url redis://EXCHANGE_HOST:6379
  {INDEX_ENV}=0 {COUNT_ENV}=2 gsy-e-sdk fleet worker \\
      --config fleet.yaml --redis-url redis://EXCHANGE_HOST:6379
  {INDEX_ENV}=1 {COUNT_ENV}=2 gsy-e-sdk fleet worker \\
      --config fleet.yaml --redis-url redis://EXCHANGE_HOST:6379
"""


@click.command("worker", help=WORKER_HELP)
@click.option(
    "--config",
    "config_path",
    required=True,
    envvar="GSY_FLEET_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fleet config, the same file as the dispatcher's [env GSY_FLEET_CONFIG].",
)
@redis_option
@click.option(
    "--name",
    default="worker",
    show_default=True,
    envvar="GSY_FLEET_WORKER_NAME",
    help="Worker name; the node is NAME@hostname [env GSY_FLEET_WORKER_NAME].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    envvar="GSY_FLEET_WORKER_CONCURRENCY",
    help="Threads [env GSY_FLEET_WORKER_CONCURRENCY].",
)
@click.option(
    "--loglevel",
    default="INFO",
    show_default=True,
    envvar="GSY_FLEET_WORKER_LOG_LEVEL",
    help="Celery log level [env GSY_FLEET_WORKER_LOG_LEVEL].",
)
@click.option("--print-only", is_flag=True, help="Print the queues and the celery command, then exit.")
def worker_command(
    config_path: Path, redis_url: str | None, name: str, concurrency: int, loglevel: str, print_only: bool
) -> None:
    config = load_or_exit(config_path)
    try:
        queues = queues_from_env(os.environ, config.shards)
    except WorkerQueuesError as exc:
        raise click.UsageError(str(exc)) from None
    argv = celery_worker_command(queues, name, loglevel.upper())
    argv[argv.index("--concurrency") + 1] = str(concurrency)
    if print_only:
        click.echo(f"worker {name} consumes {','.join(queues)}", err=True)
        click.echo(" ".join(argv))
        return
    exchange_redis = config.exchange_redis_url(redis_url)
    broker = os.environ.get(BROKER_ENV) or config.broker_url or exchange_redis
    require_or_exit(broker, wait=BROKER_WAIT_S, what="the Celery broker")
    click.echo(f"worker {name} consumes {','.join(queues)}", err=True)
    # The broker and Redis as the dispatcher picks them, whatever of them the environment lacks.
    env = {
        **os.environ,
        "GSY_FLEET_CONFIG": str(config_path.resolve()),
        BROKER_ENV: broker,
        REDIS_URL_ENV: exchange_redis,
    }
    logger.info("exec %s", " ".join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)  # celery replaces this process, so stop signals reach it directly


def main() -> None:
    """``python -m orchestrator.worker_entry``: the container entrypoint (works before CLI registration)."""
    logging.basicConfig(
        level=os.environ.get("GSY_LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    worker_command(prog_name="gsy-e-sdk fleet worker")


if __name__ == "__main__":
    main()
