"""``gsy-e-sdk exchange run`` and ``gsy-e-sdk exchange generate``."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from pydantic import ValidationError

from gsy_e_sdk.wire.redact import redact_url
from gsy_e_sdk.wire.redis_url import redis_url_option
from gsy_local_exchange.batch_answers import MB, BatchLimits
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.descriptor import build_descriptor, default_simulation_id, publish_descriptor
from gsy_local_exchange.durations import parse_duration
from gsy_local_exchange.embedded_redis import RedisUnavailable, redis_url
from gsy_local_exchange.generate import generate_scenario
from gsy_local_exchange.http.limits import FacadeLimits
from gsy_local_exchange.http.server import HttpOptions, build_server, serve_in_thread, stop
from gsy_local_exchange.http.state import publish_spot_slot
from gsy_local_exchange.http.users import UsersError
from gsy_local_exchange.redis_api import RedisEdge
from gsy_local_exchange.results import RunResults
from gsy_local_exchange.runner import FAST, REALTIME, ExchangeRunner, RunOptions
from gsy_local_exchange.scenario import Scenario, ScenarioError, Settings, load_scenario
from gsy_local_exchange.simulation import Simulation

logger = logging.getLogger(__name__)

# Beyond this many assets every aggregator getting every asset in every event costs more than
# the trading itself (O(aggregators x assets) bytes per event), so 'auto' sends compact trees.
COMPACT_TREE_ABOVE = 2_000


class DurationType(click.ParamType):
    """``15m``, ``2h``, ``1d`` ...; a zero duration only where ``allow_zero`` (negative ones never parse)."""

    name = "duration"

    def __init__(self, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(self, value, param, ctx) -> timedelta:
        try:
            duration = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if not duration and not self.allow_zero:
            self.fail(f"must be longer than 0 s, got {value!r}", param, ctx)
        return duration


class PaceType(click.ParamType):
    name = "pace"

    def convert(self, value, param, ctx) -> str | float:
        if value in (FAST, REALTIME):
            return value
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not 'fast', 'realtime' or a number of seconds per slot", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail("seconds per slot must be a positive finite number", param, ctx)
        return seconds


@click.group("exchange")
def exchange_group() -> None:
    """The local GSy Exchange: a wire-compatible stand-in that needs no account."""


def _finite(_ctx, param, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter("must be a finite number", param=param)
    return value


def http_options(port_required: bool):
    """Options of the HTTP facade, shared by ``exchange run`` and ``exchange http``."""

    def decorate(command):
        command = facade_limit_options(command)
        for option in reversed(
            [
                click.option(
                    "--http-port",
                    type=click.IntRange(1, 65535),
                    required=port_required,
                    default=None,
                    help="Serve the REST + websocket API (REST.md) on this port.",
                ),
                click.option(
                    "--http-host", default="127.0.0.1", show_default=True, help="Address the HTTP facade listens on."
                ),
                click.option(
                    "--users-file",
                    type=click.Path(dir_okay=False, exists=True, path_type=Path),
                    default=None,
                    envvar="GSY_EXCHANGE_USERS_FILE",
                    help="JSON/YAML {user: password} [env GSY_EXCHANGE_USERS_FILE]; else env "
                    "GSY_EXCHANGE_USERS, else API_CLIENT_USERNAME/API_CLIENT_PASSWORD.",
                ),
                click.option(
                    "--token-lifetime",
                    type=DurationType(),
                    default="48h",
                    show_default=True,
                    help="Lifetime of issued JWTs.",
                ),
                click.option(
                    "--rate-limit",
                    type=click.FloatRange(min=0, max=1e6),
                    default=0,
                    show_default=True,
                    callback=_finite,
                    help="Requests per second per user before 429 + Retry-After (0: no limit).",
                ),
            ]
        ):
            command = option(command)
        return command

    return decorate


# --- Facade limits (issue 14): their own block, stored in the click context by a callback so the
# commands' signatures stay as they are; start_http() reads them back.
_FACADE_LIMITS = "facade_limits"


def _facade_limit(name: str):
    def store(ctx: click.Context, _param, value):
        if value is not None and value != ():
            ctx.meta.setdefault(_FACADE_LIMITS, {})[name] = value
        return value

    return store


def facade_limit_options(command):
    defaults = FacadeLimits()
    for option in reversed(
        [
            click.option(
                "--max-body-bytes",
                type=click.IntRange(min=1024),
                default=defaults.max_body_bytes,
                show_default=True,
                expose_value=False,
                callback=_facade_limit("max_body_bytes"),
                help="HTTP facade: larger request bodies get 413 unread.",
            ),
            click.option(
                "--max-batch-body-bytes",
                type=click.IntRange(min=1024),
                default=defaults.max_batch_body_bytes,
                show_default=True,
                expose_value=False,
                callback=_facade_limit("max_batch_body_bytes"),
                help="HTTP facade: body limit of batch-commands/.",
            ),
            click.option(
                "--http-max-batch-commands",
                type=click.IntRange(min=1),
                default=defaults.max_batch_commands,
                show_default=True,
                expose_value=False,
                callback=_facade_limit("max_batch_commands"),
                help="HTTP facade: commands per batch-commands/ request; more get 400.",
            ),
            click.option(
                "--trusted-proxy",
                multiple=True,
                expose_value=False,
                callback=_facade_limit("trusted_proxies"),
                help="HTTP facade: address of a reverse proxy whose X-Forwarded-For is believed (repeatable).",
            ),
            click.option(
                "--graphql-introspection",
                is_flag=True,
                expose_value=False,
                callback=_facade_limit("graphql_introspection"),
                help="HTTP facade: allow GraphQL introspection.",
            ),
        ]
    ):
        command = option(command)
    return command


def _slot_started(client, run_id: str):
    """``on_slot`` of the runner: log progress, and tell the facade (REST forecasts in Wh name the next slot)."""

    def on_slot(slot_index: int, slot_count: int) -> None:
        _progress(slot_index, slot_count)
        publish_spot_slot(client, run_id, slot_index)

    return on_slot


# --- end of facade limits


def start_http(
    http_port: int | None, http_host: str, users_file: Path | None, token_lifetime, rate_limit: float, redis_url: str
):
    """Start the facade in a thread, or exit 2 with the reason; (server, thread) or None."""
    if http_port is None:
        return None
    limits = FacadeLimits(**click.get_current_context().meta.get(_FACADE_LIMITS, {}))
    options = HttpOptions(
        port=http_port,
        host=http_host,
        users_file=users_file,
        token_lifetime_s=token_lifetime.total_seconds(),
        rate_limit=rate_limit,
        limits=limits,
    )
    try:
        server = build_server(options, redis_url)
        thread = serve_in_thread(server)
    except (UsersError, RuntimeError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    click.echo(
        f"http: listening on http://{http_host}:{http_port} (websockets: ws://{http_host}:{http_port}/external-ws)",
        err=True,
    )
    return server, thread


@exchange_group.command("run")
@click.option(
    "--scenario",
    "scenario_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scenario file (JSON or YAML).",
)
@redis_url_option("Redis to use [env REDIS_URL]; default: 127.0.0.1:6379 if it answers, else a private server.")
@click.option("--slot-length", type=DurationType(), default=None, help="Slot length, e.g. 15m.")
@click.option("--tick-length", type=DurationType(), default=None, help="Tick length, e.g. 15s.")
@click.option("--duration", type=DurationType(), default=None, help="Simulated duration, e.g. 1d or 2h.")
@click.option(
    "--start-date",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="Start (UTC), e.g. 2026-01-01 or 2026-01-01T10:00; default: the scenario's date or today.",
)
@click.option(
    "--pace",
    type=PaceType(),
    default=None,
    help="fast (as fast as clients keep up), realtime, or wall seconds per slot; "
    "default: the scenario's slot_length_realtime, else fast.",
)
@click.option(
    "--tick-deadline",
    type=DurationType(allow_zero=True),
    default="2s",
    show_default=True,
    help="Fast pace: longest wait for clients' batches at an event tick.",
)
@click.option("--paused", is_flag=True, help="Start paused; resume with a message on '/resume'.")
@click.option(
    "--start-when-selected",
    type=click.IntRange(min=0),
    default=0,
    help="Start once this many assets or markets have selected an aggregator.",
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write trades.csv and summary.json here.",
)
@click.option(
    "--grid-tree",
    type=click.Choice(["auto", "full", "compact"]),
    default="auto",
    show_default=True,
    help="Events' grid_tree: 'full' (every area, as the reference exchange), 'compact' (the aggregator's "
    f"own devices and the markets above them), 'auto' (compact above {COMPACT_TREE_ABOVE:,} assets).",
)
@click.option(
    "--simulation-id",
    default=None,
    envvar="CONFIGURATION_ID",
    help="Configuration id REST clients use in URLs [env CONFIGURATION_ID]; "
    "default: derived from the scenario file name.",
)
@click.option(
    "--strict-reference",
    is_flag=True,
    envvar="GSY_EXCHANGE_STRICT_REFERENCE",
    help="Refuse what crashes the reference exchange: orders whose time_slot names the current spot "
    "slot (REDIS.md 11.1) get an error [env GSY_EXCHANGE_STRICT_REFERENCE=1].",
)
@click.option(
    "--max-batch-commands",
    type=click.IntRange(min=1),
    default=BatchLimits.max_commands,
    show_default=True,
    help="Larger batches are refused whole with one error answer.",
)
@click.option(
    "--batch-cache-mb",
    type=click.IntRange(min=0),
    default=BatchLimits.cache_bytes // MB,
    show_default=True,
    help="Memory for answers kept for re-sent batches (oldest evicted first).",
)
@http_options(port_required=False)
def run_command(
    scenario_path: Path,
    redis_url: str | None,
    slot_length,
    tick_length,
    duration,
    start_date,
    pace,
    tick_deadline,
    paused,
    start_when_selected,
    results_dir,
    grid_tree,
    simulation_id,
    strict_reference: bool,
    max_batch_commands: int,
    batch_cache_mb: int,
    http_port,
    http_host,
    users_file,
    token_lifetime,
    rate_limit,
) -> None:
    """Run a scenario and serve the Redis protocol until the simulation ends."""
    scenario = load_scenario_or_exit(
        scenario_path, {"slot_length": slot_length, "tick_length": tick_length, "sim_duration": duration}
    )
    settings = scenario.settings
    first_day = settings.start_date or datetime.now(UTC).date()
    start = start_date or datetime.combine(first_day, datetime.min.time())
    clock = SimulationClock(start, settings.slot_length, settings.tick_length, settings.sim_duration)
    pace = effective_pace(pace, settings)
    try:
        asset_count = sum(1 for node, _ in scenario.iter_nodes() if not hasattr(node, "children"))
        compact = grid_tree == "compact" or (grid_tree == "auto" and asset_count > COMPACT_TREE_ABOVE)
        limits = BatchLimits(max_commands=max_batch_commands, cache_bytes=batch_cache_mb * MB)
        simulation = Simulation(scenario, clock, compact_tree=compact, limits=limits, strict_reference=strict_reference)
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    results = RunResults(results_dir, strict_reference=strict_reference)
    options = RunOptions(
        pace=pace, tick_deadline=tick_deadline.total_seconds(), paused=paused, start_when_selected=start_when_selected
    )
    runner = None
    stop_reason = None
    with _SigtermAsInterrupt() as termination:
        try:
            with redis_url_or_exit(redis_url) as url:
                click.echo(
                    f"exchange: scenario {scenario_path.name}, {clock.slot_count} slots, redis {redact_url(url)}",
                    err=True,
                )
                edge = RedisEdge(url)
                http = None
                try:
                    descriptor = build_descriptor(
                        simulation, simulation_id or default_simulation_id(scenario_path.stem)
                    )
                    publish_descriptor(edge.client, descriptor)
                    http = start_http(http_port, http_host, users_file, token_lifetime, rate_limit, url)
                    if http:
                        click.echo(f"http: simulation id {descriptor.simulation_id}", err=True)
                    runner = ExchangeRunner(
                        simulation, edge, options, results, on_slot=_slot_started(edge.client, descriptor.run_id)
                    )
                    runner.run()
                finally:
                    if http:
                        stop(*http)
                    edge.close()
        except KeyboardInterrupt:
            termination.shield()
            stop_reason = termination.received or "SIGINT"
            click.echo(f"stopped by {stop_reason}", err=True)
        finally:
            if stop_reason is None and not simulation.finished:
                stop_reason = "stop command" if runner is not None and runner.stopped else "error"
            results.close(stop_reason)
    click.echo(results.table())
    if results_dir:
        click.echo(f"results written to {results_dir}/trades.csv and {results_dir}/summary.json")


class _SigtermAsInterrupt:
    """SIGTERM (docker stop, a supervisor) ends the run as Ctrl-C does, so results get written whole.

    After the first one, SIGTERM and Ctrl-C are ignored until the results are closed (``shield``),
    so a second signal cannot cut them short; SIGKILL remains for a shutdown that hangs.
    """

    def __init__(self) -> None:
        self.received: str | None = None

    def __enter__(self) -> _SigtermAsInterrupt:
        self._previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, _signum: int, _frame) -> None:
        self.received = "SIGTERM"
        self.shield()
        raise KeyboardInterrupt

    def shield(self) -> None:
        for number in self._previous:
            signal.signal(number, signal.SIG_IGN)

    def __exit__(self, *_) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


# The scenario settings the run command's flags override.
SETTING_FLAGS = {"slot_length": "--slot-length", "tick_length": "--tick-length", "sim_duration": "--duration"}


def load_scenario_or_exit(path: Path, overrides: dict[str, timedelta | None]) -> Scenario:
    """The scenario with the flags' settings, or exit 2 blaming what is wrong: the file, or a flag.

    A flag's value can be fine alone and clash with the file's other settings (``--duration``
    shorter than the scenario's slot): then the flag is named, not the scenario.
    """
    try:
        return load_scenario(path, overrides)
    except ScenarioError as exc:
        error = exc
    given = {name: value for name, value in overrides.items() if value is not None}
    if given:
        try:
            from_file = load_scenario(path).settings
        except ScenarioError:
            pass  # the file is wrong on its own: report it
        else:
            try:
                Settings.model_validate({**from_file.model_dump(), **given})
            except ValidationError as clash:
                problem = clash.errors()[0]["msg"].removeprefix("Value error, ")
                blamed = [flag for name, flag in SETTING_FLAGS.items() if name in given and name in problem]
                kept = ", ".join(f"{name} {getattr(from_file, name)}" for name in SETTING_FLAGS if name not in given)
                raise click.BadParameter(
                    f"{problem} (the scenario's {kept})" if kept else problem,
                    param_hint=blamed or [SETTING_FLAGS[name] for name in given],
                ) from None
    click.echo(f"Error: {error}", err=True)
    sys.exit(2)


def effective_pace(option: str | float | None, settings) -> str | float:
    """``--pace`` wins; otherwise the scenario's ``slot_length_realtime`` (wall seconds per slot), else fast."""
    if option is not None:
        return option
    return settings.slot_length_realtime.total_seconds() if settings.slot_length_realtime else FAST


def _progress(slot_index: int, slot_count: int) -> None:
    logger.info("slot %d/%d", slot_index + 1, slot_count)


@contextlib.contextmanager
def redis_url_or_exit(explicit: str | None) -> Iterator[str]:
    """``redis_url(explicit)``, or exit 2 with the reason (its URL redacted) when no Redis answers."""
    try:
        with redis_url(explicit) as url:  # it raises when entered, not when called
            yield url
    except RedisUnavailable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


@exchange_group.command("http")
@redis_url_option("Redis of the running exchange [env REDIS_URL].")
@http_options(port_required=True)
def http_command(
    redis_url: str | None, http_port: int, http_host: str, users_file: Path | None, token_lifetime, rate_limit: float
) -> None:
    """Serve the REST + websocket API for an exchange running elsewhere (the web tier alone).

    It keeps its state in Redis, so it can be restarted, or run on another machine, while the
    exchange goes on.
    """
    with redis_url_or_exit(redis_url) as url:
        server, thread = start_http(http_port, http_host, users_file, token_lifetime, rate_limit, url)
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
        finally:
            stop(server, thread)


@exchange_group.command("generate")
@click.option("--assets", type=click.IntRange(min=1), required=True, help="Number of assets.")
@click.option("--markets", type=click.IntRange(min=1), required=True, help="Number of markets under the root.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Scenario file to write.")
def generate_command(assets: int, markets: int, seed: int, out: Path) -> None:
    """Write a generated scenario for large fleets."""
    if markets > assets:
        raise click.BadParameter("must not exceed --assets", param_hint="--markets")
    try:
        out.write_text(json.dumps(generate_scenario(assets, markets, seed), indent=1))
    except OSError as exc:
        raise click.BadParameter(f"cannot write {out}: {exc.strerror}", param_hint="--out") from None
    click.echo(f"wrote {out} ({assets} assets in {markets} markets)")
