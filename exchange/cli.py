"""``gsy-e-sdk exchange run`` and ``gsy-e-sdk exchange generate``."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from exchange.clock import SimulationClock
from exchange.durations import parse_duration
from exchange.generate import generate_scenario
from exchange.redis_api import RedisEdge
from exchange.results import RunResults
from exchange.runner import FAST, REALTIME, ExchangeRunner, RunOptions
from exchange.scenario import ScenarioError, load_scenario
from exchange.simulation import Simulation
from gsy_e_sdk.embedded_redis import RedisUnavailable, redis_url

logger = logging.getLogger(__name__)


class DurationType(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx) -> timedelta:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class PaceType(click.ParamType):
    name = "pace"

    def convert(self, value, param, ctx) -> str | float:
        if value in (FAST, REALTIME):
            return value
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not 'fast', 'realtime' or a number of seconds per slot", param, ctx)
        if seconds <= 0:
            self.fail("seconds per slot must be positive", param, ctx)
        return seconds


@click.group("exchange")
def exchange_group() -> None:
    """The local GSy Exchange: a wire-compatible stand-in that needs no account."""


@exchange_group.command("run")
@click.option("--scenario", "scenario_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Scenario file (JSON or YAML).")
@click.option("--redis-url", default=None, envvar="REDIS_URL",
              help="Redis to use; default: 127.0.0.1:6379 if it answers, else a private server.")
@click.option("--slot-length", type=DurationType(), default=None, help="Slot length, e.g. 15m.")
@click.option("--tick-length", type=DurationType(), default=None, help="Tick length, e.g. 15s.")
@click.option("--duration", type=DurationType(), default=None, help="Simulated duration, e.g. 1d or 2h.")
@click.option("--start-date", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), default=None,
              help="Start (UTC), e.g. 2026-01-01 or 2026-01-01T10:00; default: the scenario's date or today.")
@click.option("--pace", type=PaceType(), default=None,
              help="fast (as fast as clients keep up), realtime, or wall seconds per slot; "
                   "default: the scenario's slot_length_realtime, else fast.")
@click.option("--tick-deadline", type=DurationType(), default="2s", show_default=True,
              help="Fast pace: longest wait for clients' batches at an event tick.")
@click.option("--paused", is_flag=True, help="Start paused; resume with a message on '/resume'.")
@click.option("--start-when-selected", type=click.IntRange(min=0), default=0,
              help="Start once this many assets or markets have selected an aggregator.")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write trades.csv and summary.json here.")
def run_command(scenario_path: Path, redis_url: str | None, slot_length, tick_length, duration,
                start_date, pace, tick_deadline, paused, start_when_selected, results_dir) -> None:
    """Run a scenario and serve the Redis protocol until the simulation ends."""
    overrides = {"slot_length": slot_length, "tick_length": tick_length, "sim_duration": duration}
    try:
        scenario = load_scenario(scenario_path, overrides)
    except ScenarioError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    settings = scenario.settings
    first_day = settings.start_date or datetime.now(timezone.utc).date()
    start = start_date or datetime.combine(first_day, datetime.min.time())
    clock = SimulationClock(start, settings.slot_length, settings.tick_length, settings.sim_duration)
    pace = effective_pace(pace, settings)
    try:
        simulation = Simulation(scenario, clock)
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    results = RunResults(results_dir)
    options = RunOptions(pace=pace, tick_deadline=tick_deadline.total_seconds(), paused=paused,
                         start_when_selected=start_when_selected)
    try:
        with redis_url_or_exit(redis_url) as url:
            click.echo(f"exchange: scenario {scenario_path.name}, {clock.slot_count} slots, redis {url}", err=True)
            edge = RedisEdge(url)
            runner = ExchangeRunner(simulation, edge, options, results, on_slot=_progress)
            try:
                runner.run()
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
            finally:
                edge.close()
    finally:
        results.close()
    click.echo(results.table())
    if results_dir:
        click.echo(f"results written to {results_dir}/trades.csv and {results_dir}/summary.json")


def effective_pace(option: str | float | None, settings) -> str | float:
    """``--pace`` wins; otherwise the scenario's ``slot_length_realtime`` (wall seconds per slot), else fast."""
    if option is not None:
        return option
    return settings.slot_length_realtime.total_seconds() if settings.slot_length_realtime else FAST


def _progress(slot_index: int, slot_count: int) -> None:
    logger.info("slot %d/%d", slot_index + 1, slot_count)


def redis_url_or_exit(explicit: str | None):
    try:
        return redis_url(explicit)
    except RedisUnavailable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


@exchange_group.command("generate")
@click.option("--assets", type=click.IntRange(min=1), required=True, help="Number of assets.")
@click.option("--markets", type=click.IntRange(min=1), required=True, help="Number of markets under the root.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Scenario file to write.")
def generate_command(assets: int, markets: int, seed: int, out: Path) -> None:
    """Write a generated scenario for large fleets."""
    if markets > assets:
        raise click.BadParameter("must not exceed --assets", param_hint="--markets")
    out.write_text(json.dumps(generate_scenario(assets, markets, seed), indent=1))
    click.echo(f"wrote {out} ({assets} assets in {markets} markets)")
