"""``gsy-e-sdk flower``: Flower for the fleet's Celery app (``celery -A workers flower``), behind basic auth.

Why a wrapper: ``celery flower --basic-auth=user:password`` puts the password in the process list,
in shell history and in compose files. Here the credentials come from the environment only
(``GSY_FLOWER_BASIC_AUTH`` or Flower's own ``FLOWER_BASIC_AUTH``, or a file named by
``GSY_FLOWER_BASIC_AUTH_FILE``), are handed to Flower through its environment, and are never
printed or logged. Without credentials it refuses to start unless ``--no-auth`` is given.
The broker is found the way workers and the dispatcher find it (``--broker-url`` /
``GSY_FLEET_BROKER_URL``, else the fleet config's ``broker_url``, else the exchange's Redis:
``REDIS_URL``, else the fleet config's), so Flower watches the same queues.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from kombu.utils.url import maybe_sanitize_url

from orchestrator.celery_app import BROKER_ENV
from orchestrator.celery_app import broker_url as env_broker_url
from orchestrator.cli_options import load_or_exit
from orchestrator.flower_auth import FlowerAuthError, basic_auth_from_env

logger = logging.getLogger(__name__)

# The tasks page shows args (the dispatcher's summary: aggregator, slice, shard, event, slot, tick) and
# the worker next to each other; the wide uuid column (the link to a task's page) comes last.
TASK_COLUMNS = "name,state,args,worker,received,runtime,uuid"


def resolve_broker(broker_option: str | None, config_path: Path | None) -> str:
    """The broker the fleet uses: option/env, else the fleet config's broker, else its Redis."""
    if broker_option:
        return broker_option
    if config_path is not None:
        config = load_or_exit(config_path)
        return config.broker_url or config.exchange_redis_url()
    return env_broker_url()


def flower_argv(port: int, address: str, url_prefix: str | None = None) -> list[str]:
    """The ``celery ... flower`` arguments; never credentials (those travel in the environment)."""
    argv = ["flower", f"--port={port}", f"--address={address}", f"--tasks_columns={TASK_COLUMNS}"]
    if url_prefix:
        argv.append(f"--url_prefix={url_prefix}")
    return argv


@click.command("flower")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=5555,
    show_default=True,
    envvar="GSY_FLOWER_PORT",
    help="Port [env GSY_FLOWER_PORT].",
)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    envvar="GSY_FLOWER_ADDRESS",
    help="Address to listen on [env GSY_FLOWER_ADDRESS]; 0.0.0.0 in a container.",
)
@click.option(
    "--url-prefix",
    default=None,
    envvar="GSY_FLOWER_URL_PREFIX",
    help="Serve under this path, behind a reverse proxy [env GSY_FLOWER_URL_PREFIX].",
)
@click.option(
    "--broker-url",
    default=None,
    envvar="GSY_FLEET_BROKER_URL",
    help="Celery broker [env GSY_FLEET_BROKER_URL]; default: the fleet config's, else REDIS_URL.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    envvar="GSY_FLEET_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fleet config [env GSY_FLEET_CONFIG].",
)
@click.option("--no-auth", is_flag=True, help="Run without basic auth (anyone who reaches the port controls workers).")
def flower_command(
    port: int, address: str, url_prefix: str | None, broker_url: str | None, config_path: Path | None, no_auth: bool
) -> None:
    """Monitor the fleet's Celery workers and shard tasks with Flower.

    Basic auth comes from GSY_FLOWER_BASIC_AUTH=user:password (or FLOWER_BASIC_AUTH, or a file
    named by GSY_FLOWER_BASIC_AUTH_FILE); never pass it on the command line.
    """
    found = basic_auth_from_env(os.environ)
    if found and no_auth:
        raise click.UsageError(f"--no-auth given but {found[0]} is set; unset one of them")
    if not found and not no_auth:
        raise FlowerAuthError(
            "Flower needs basic auth: set GSY_FLOWER_BASIC_AUTH=user:password in the "
            "environment (or GSY_FLOWER_BASIC_AUTH_FILE), or pass --no-auth explicitly"
        )
    if no_auth:
        click.echo(
            "Warning: Flower runs WITHOUT authentication; anyone who reaches "
            f"{address}:{port} can see tasks and shut workers down",
            err=True,
        )
        os.environ.pop("FLOWER_BASIC_AUTH", None)
    elif found is not None:
        # Flower reads FLOWER_BASIC_AUTH itself; the secret never appears in argv.
        os.environ["FLOWER_BASIC_AUTH"] = ",".join(found[1])
    broker = resolve_broker(broker_url, config_path)

    # The app is built for this broker (its queue declarations differ between Redis and RabbitMQ).
    os.environ[BROKER_ENV] = broker
    from workers import app  # noqa: PLC0415 - Celery loads only when Flower runs; the app of ``celery -A workers``

    click.echo(
        f"Flower on http://{address}:{port}{url_prefix or ''}/ watching {maybe_sanitize_url(broker)}; "
        f"basic auth {'off' if no_auth else 'on'}",
        err=True,
    )
    sys.exit(app.start(flower_argv(port, address, url_prefix)) or 0)


def main() -> None:
    """``python -m orchestrator.flower``: the container entrypoint (works before CLI registration)."""
    logging.basicConfig(
        level=os.environ.get("GSY_LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    flower_command(prog_name="gsy-e-sdk flower")


if __name__ == "__main__":
    main()
