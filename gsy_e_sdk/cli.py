"""The ``gsy-e-sdk`` command line: one click group, one subcommand per job."""

import logging

import click

from exchange.cli import exchange_group

LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET")
LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s (%(lineno)d) %(name)s: %(message)s"


def configure_logging(level: str, log_file: str = "") -> None:
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    handler.setLevel(level)


@click.group()
@click.option("-l", "--log-level", default="ERROR", show_default=True,
              type=click.Choice(LOG_LEVELS, case_sensitive=False), help="Log level.")
@click.option("-f", "--log-file", default="", help="Log to this file instead of stderr.")
def main(log_level: str, log_file: str) -> None:
    """GSy Exchange SDK, local exchange and fleet orchestrator."""
    configure_logging(log_level.upper(), log_file)


main.add_command(exchange_group)
