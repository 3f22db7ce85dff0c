"""``gsy-e-sdk enqueue ...``: operator commands from the shell (see ``orchestrator.operator``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from gsy_e_sdk.wire.redis_connection import get_connection
from orchestrator.celery_app import make_app
from orchestrator.cli_options import exit_with, fleet_redis_url, load_or_exit, redis_option
from orchestrator.operator import Enqueued, Operator, OperatorError
from orchestrator.state import StateStore


def build_operator(config_path: Path, redis_url: str | None) -> Operator:
    config = load_or_exit(config_path)
    url = fleet_redis_url(config, redis_url)
    return Operator(config, StateStore(get_connection(url).redis, config.name), make_app(config.broker_url or url))


def _finish(operator: Operator, enqueued: Enqueued, wait: bool, timeout: float) -> None:
    click.echo(f"command {enqueued.command_id}: task {' '.join(enqueued.task_ids)}")
    if not wait:
        return
    try:
        answers = operator.wait(enqueued, timeout)
    except TimeoutError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(answers if len(answers) > 1 else answers[0], indent=2))
    reasons = operator.explain(enqueued, answers)
    for reason in reasons:
        click.echo(f"Error: {reason}", err=True)
    if reasons:
        sys.exit(1)


def _run(ctx: click.Context, action) -> None:
    options = ctx.obj
    try:
        operator = build_operator(options["config"], options["redis_url"])
        enqueued = action(operator)
    except OperatorError as exc:
        exit_with(str(exc))
    except ValidationError as exc:  # a value click let through, e.g. nan
        exit_with("; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()))
    _finish(operator, enqueued, options["wait"], options["timeout"])


def _parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    params = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="PARAM")
        params[name] = yaml.safe_load(raw)  # numbers, booleans and strings as YAML reads them
    return params


@click.group("enqueue")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The fleet file the dispatcher runs with.",
)
@redis_option
@click.option("--wait", is_flag=True, help="Wait for and print the answer (the exchange's response).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@click.pass_context
def enqueue_group(ctx: click.Context, config_path: Path, redis_url: str | None, wait: bool, timeout: float) -> None:
    """Send an operator command to the shard that owns its target; prints the task id."""
    ctx.obj = {"config": config_path, "redis_url": redis_url, "wait": wait, "timeout": timeout}


@enqueue_group.command("order")
@click.argument("asset")
@click.option("--side", type=click.Choice(["bid", "offer"]), required=True)
@click.option("--energy", type=click.FloatRange(min=0, min_open=True), required=True, help="kWh")
@click.option("--rate", type=click.FloatRange(min=0), required=True, help="ct/kWh")
@click.option("--keep-existing", is_flag=True, help="Add to the asset's open orders instead of replacing them.")
@click.pass_context
def order_command(ctx: click.Context, asset: str, side: str, energy: float, rate: float, keep_existing: bool) -> None:
    """Place a bid or offer for ASSET in the running slot."""
    _run(ctx, lambda operator: operator.order(asset, side, energy, rate, replace_existing=not keep_existing))


def _target_options(command):
    command = click.argument("asset", required=False)(command)
    return click.option("--aggregator", default=None, help="Act on every asset of this aggregator.")(command)


@enqueue_group.command("pause")
@_target_options
@click.pass_context
def pause_command(ctx: click.Context, asset: str | None, aggregator: str | None) -> None:
    """Stop trading for ASSET (or a whole --aggregator): its open orders are withdrawn."""
    _run(ctx, lambda operator: operator.pause(asset, aggregator))


@enqueue_group.command("resume")
@_target_options
@click.pass_context
def resume_command(ctx: click.Context, asset: str | None, aggregator: str | None) -> None:
    """Let a paused ASSET (or --aggregator) trade again from the next event."""
    _run(ctx, lambda operator: operator.pause(asset, aggregator, resume=True))


@enqueue_group.command("set-param")
@_target_options
@click.option("--param", "params", multiple=True, required=True, help="NAME=VALUE, e.g. final_rate=28")
@click.pass_context
def set_param_command(ctx: click.Context, asset: str | None, aggregator: str | None, params: tuple[str, ...]) -> None:
    """Change strategy parameters of ASSET (or --aggregator) live."""
    parsed = _parse_params(params)
    _run(ctx, lambda operator: operator.set_param(asset, aggregator, parsed))


@enqueue_group.command("grid-fee")
@click.argument("market")
@click.option("--fee", type=click.FloatRange(min=0), required=True, help="Constant fee, ct/kWh.")
@click.pass_context
def grid_fee_command(ctx: click.Context, market: str, fee: float) -> None:
    """Set MARKET's constant grid fee (from the next slot, as the exchange applies fees)."""
    _run(ctx, lambda operator: operator.grid_fee(market, fee))


@enqueue_group.command("resync")
@click.argument("aggregator")
@click.pass_context
def resync_command(ctx: click.Context, aggregator: str) -> None:
    """Decide and send AGGREGATOR's orders again from the last event each of its slices saw."""
    _run(ctx, lambda operator: operator.resync(aggregator))
