"""What every fleet command does with its options: load the fleet file or exit 2, pick its Redis."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.config import FleetConfig, FleetConfigError, load_fleet_config


def load_or_exit(path: Path) -> FleetConfig:
    """The fleet file, or a one-line error naming the field and exit code 2."""
    try:
        return load_fleet_config(path)
    except FleetConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


def fleet_redis_url(config: FleetConfig, explicit: str | None) -> str:
    """The Redis holding the fleet's state (and, in Redis mode, the exchange's channels)."""
    return config.exchange.redis_url or explicit or "redis://127.0.0.1:6379"
