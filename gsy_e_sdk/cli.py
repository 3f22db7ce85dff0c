"""The ``gsy-e-sdk`` command line: one click group, one subcommand per job.

``run`` is the default command, as in the original SDK: ``gsy-e-sdk --setup x`` and a bare
``gsy-e-sdk`` mean ``gsy-e-sdk run ...``.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, NoReturn

import click
from click.core import ParameterSource

from gsy_e_sdk.constants import API_CLIENT_SIMULATION_ID, DEFAULT_DOMAIN_NAME, DEFAULT_WEBSOCKET_DOMAIN
from gsy_e_sdk.utils import SimulationConfigError, read_simulation_config_file
from gsy_e_sdk.wire.redis_url import REDIS_URL_ENV, RedisUnavailable, redis_url_option, require_redis, resolve_redis_url

logger = logging.getLogger(__name__)

LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET")
LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s (%(lineno)d) %(name)s: %(message)s"
BUNDLED_SETUPS_PACKAGE = "gsy_e_sdk.setups"
# REST settings the run command exports for the script, with their defaults (REST.md 6).
REST_SETTINGS = {
    "API_CLIENT_DOMAIN_NAME": DEFAULT_DOMAIN_NAME,
    "API_CLIENT_WEBSOCKET_DOMAIN_NAME": DEFAULT_WEBSOCKET_DOMAIN,
    "API_CLIENT_SIMULATION_ID": API_CLIENT_SIMULATION_ID,
}


def configure_logging(level: str, log_file: str = "") -> None:
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    handler.setLevel(level)


class LazySubcommand(NamedTuple):
    target: str  # "module:attribute" of the click command
    extra: str  # the distribution extra that brings its dependencies
    help: str  # shown by ``gsy-e-sdk --help`` without importing anything


# Subcommands outside the SDK, imported only when they run: a plain ``pip install gsy-e-sdk``
# lacks their dependencies (Celery, Starlette, matplotlib ...), and a user script or
# ``gsy-e-sdk run`` should not pay for loading them.
LAZY_SUBCOMMANDS = {
    "demo": LazySubcommand(
        "orchestrator.demo:demo_command",
        "all",
        "Run the local exchange and a Celery fleet for one simulated day and report.",
    ),
    "enqueue": LazySubcommand(
        "orchestrator.operator_cli:enqueue_group",
        "fleet",
        "Send an operator command to the shard that owns its target; prints the task id.",
    ),
    "exchange": LazySubcommand(
        "gsy_local_exchange.cli:exchange_group",
        "exchange",
        "The local GSy Exchange: a wire-compatible stand-in that needs no account.",
    ),
    "fleet": LazySubcommand("orchestrator.cli:fleet_group", "fleet", "Run a fleet of assets with Celery workers."),
    "flower": LazySubcommand(
        "orchestrator.flower:flower_command", "fleet", "Monitor the fleet's Celery workers and shard tasks with Flower."
    ),
}
# Modules of our own packages: a ModuleNotFoundError naming one of them is a bug, not a missing extra.
OWN_PACKAGES = ("gsy_e_sdk", "gsy_local_exchange", "orchestrator", "workers", "gsy_framework", "d3a_api_client")


def missing_extra_command(name: str, extra: str, module: str) -> click.Command:
    """Stands in for a subcommand whose extra is not installed: says which one, exits 2."""

    def fail() -> None:
        click.echo(
            f"Error: 'gsy-e-sdk {name}' needs the {extra} extra (module {module!r} is missing): "
            f"pip install 'gsy-e-sdk[{extra}]'",
            err=True,
        )
        sys.exit(2)

    return click.Command(
        name,
        callback=fail,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help=LAZY_SUBCOMMANDS[name].help,
        add_help_option=False,
    )


class SdkGroup(click.Group):
    """The umbrella group: loads a subcommand's modules only when it runs, and hands anything
    that is not a subcommand name to ``run`` (``gsy-e-sdk --setup x`` is ``gsy-e-sdk run --setup x``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_SUBCOMMANDS:
            return command
        lazy = LAZY_SUBCOMMANDS[cmd_name]
        module_name, attribute = lazy.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or exc.name.split(".")[0] in OWN_PACKAGES:
                raise
            return missing_extra_command(cmd_name, lazy.extra, exc.name)
        command = getattr(module, attribute)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of subcommands, from static help texts: listing them imports nothing."""
        rows = [
            (
                name,
                LAZY_SUBCOMMANDS[name].help
                if name in LAZY_SUBCOMMANDS
                else self.commands[name].get_short_help_str(formatter.width),
            )
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in LAZY_SUBCOMMANDS and self.get_command(ctx, args[0]) is None:
            return "run", self.get_command(ctx, "run"), args
        return super().resolve_command(ctx, args)


@click.group(cls=SdkGroup, invoke_without_command=True, context_settings={"ignore_unknown_options": True})
@click.option(
    "-l",
    "--log-level",
    default="ERROR",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Log level.",
)
@click.option("-f", "--log-file", default="", help="Log to this file instead of stderr.")
@click.pass_context
def main(ctx: click.Context, log_level: str, log_file: str) -> None:
    """GSy Exchange SDK, local exchange and fleet orchestrator."""
    configure_logging(log_level.upper(), log_file)
    if ctx.invoked_subcommand is None:
        # A bare ``gsy-e-sdk`` is ``gsy-e-sdk run``, which then asks for --setup.
        ctx.invoke(run)


def _bundled_setups() -> list[str]:
    package = importlib.import_module(BUNDLED_SETUPS_PACKAGE)
    return sorted(name for _, name, _ in pkgutil.walk_packages(package.__path__) if not name.startswith("_"))


def validate_general_settings_are_set() -> None:
    for variable in REST_SETTINGS:
        if not os.environ.get(variable):
            raise ValueError(f"{variable} was not set, please provide")


def load_client_script(base_setup_path: str | None, setup_module_name: str) -> ModuleType:
    """Import (and so run) a user script: from ``base_setup_path`` or the bundled setups."""
    if base_setup_path:
        path = str(Path(base_setup_path).expanduser().resolve())
        if path not in sys.path:
            sys.path.append(path)
        module_name = setup_module_name
    else:
        module_name = f"{BUNDLED_SETUPS_PACKAGE}.{setup_module_name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            where = base_setup_path or f"the bundled setups ({', '.join(_bundled_setups())})"
            raise click.BadParameter(
                f"Could not find the specified module {setup_module_name!r} in {where}", param_hint="--setup"
            ) from exc
        raise


def _export_rest_settings(
    config_path: str | None, domain_name: str | None, web_socket: str | None, simulation_id: str | None
) -> None:
    """Export the REST settings for the script: config file, else options, else env/defaults."""
    try:
        config: dict[str, Any] | None = read_simulation_config_file(config_path)
    except SimulationConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'-i' / '--simulation-config-path'") from None
    if config is not None:
        values = [config["domain_name"], config["web_socket_domain_name"], config["uuid"]]
    else:
        values = [domain_name, web_socket, simulation_id]
    for (variable, default), value in zip(REST_SETTINGS.items(), values, strict=True):
        os.environ[variable] = value or os.environ.get(variable) or default
    validate_general_settings_are_set()


def _exit_with(message: str) -> NoReturn:
    """One line on stderr, exit code 2: what went wrong, not a traceback."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _warn_if_password_on_command_line(ctx: click.Context) -> None:
    """A password in argv is visible to every user of the machine (ps, /proc, shell history);
    the README promises credentials never come from the command line, so -p is deprecated."""
    if ctx.get_parameter_source("password") is ParameterSource.COMMANDLINE:
        message = (
            "-p/--password is deprecated: the password was given on the command line, where other users of "
            "this machine can read it; set env API_CLIENT_PASSWORD, or give only -u to be prompted (hidden)."
        )
        click.echo(f"Warning: {message}", err=True)
        logger.warning(message)  # in the log file too, if there is one


@main.command()
@click.option(
    "-b",
    "--base-setup-path",
    default=None,
    type=click.Path(file_okay=False),
    help="Directory holding the user script; appended to sys.path.",
)
@click.option(
    "--setup",
    "setup_module_name",
    required=True,
    help="Module name of the script (dotted names allowed). Bundled: " + ", ".join(_bundled_setups()),
)
@click.option(
    "-u",
    "--username",
    default=None,
    envvar="API_CLIENT_USERNAME",
    help="User name for the hosted exchange [env API_CLIENT_USERNAME].",
)
@click.option(
    "-p",
    "--password",
    default=None,
    envvar="API_CLIENT_PASSWORD",
    help="Password [env API_CLIENT_PASSWORD]; prompted (hidden) when a user name is given without one.",
)
@click.option("-d", "--domain-name", default=None, help="REST domain of the hosted exchange.")
@click.option("-w", "--web-socket", default=None, help="Websocket domain of the hosted exchange.")
@click.option(
    "-i",
    "--simulation-config-path",
    default=None,
    type=click.Path(dir_okay=False),
    help="The simulation's JSON config file from the platform (REST.md 5); its "
    "domain_name, web_socket_domain_name and uuid override -d/-w/-s.",
)
@click.option("-s", "--simulation-id", default=None, help="Simulation (collaboration) UUID.")
@click.option("--run-on-redis", is_flag=True, default=False, help="Talk to a local exchange over Redis.")
@redis_url_option("Redis of the local exchange [env REDIS_URL; default redis://localhost:6379].")
@click.option(
    "-l",
    "--log-level",
    default=None,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Log level (overrides the one given before 'run').",
)
@click.option("-f", "--log-file", default=None, help="Log to this file instead of stderr.")
@click.pass_context
def run(
    ctx: click.Context,
    base_setup_path: str | None,
    setup_module_name: str | None,
    username: str | None,
    password: str | None,
    domain_name: str | None,
    web_socket: str | None,
    simulation_config_path: str | None,
    simulation_id: str | None,
    run_on_redis: bool,
    redis_url: str | None,
    log_level: str | None,
    log_file: str | None,
) -> None:
    """Run a client script (its top-level code is the program)."""
    if not setup_module_name:
        raise click.UsageError("Missing option '--setup'.")
    if log_level or log_file:
        configure_logging((log_level or logging.getLevelName(logging.getLogger().level)).upper(), log_file or "")
    _warn_if_password_on_command_line(ctx)
    if run_on_redis:
        if redis_url:
            os.environ[REDIS_URL_ENV] = redis_url
        try:
            require_redis(resolve_redis_url(redis_url))
        except RedisUnavailable as exc:
            _exit_with(str(exc))
    else:
        # Before the prompt: a bad config file should not cost the user a password entry.
        try:
            _export_rest_settings(simulation_config_path, domain_name, web_socket, simulation_id)
        except ValueError as exc:
            rest_variables = ", ".join([*REST_SETTINGS, "API_CLIENT_USERNAME", "API_CLIENT_PASSWORD"])
            _exit_with(
                f"setup {setup_module_name!r} needs --run-on-redis (a local exchange), or for the hosted "
                f"exchange the env vars {rest_variables} (or -s/-d/-w/-i and -u) ({exc})"
            )
    if username and not password and not run_on_redis:
        password = click.prompt("Password", hide_input=True)
    if username:
        os.environ["API_CLIENT_USERNAME"] = username
    if password:
        os.environ["API_CLIENT_PASSWORD"] = password
    os.environ["API_CLIENT_RUN_ON_REDIS"] = "true" if run_on_redis else "false"
    load_client_script(base_setup_path, setup_module_name)
