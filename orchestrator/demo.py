"""``gsy-e-sdk demo``: the whole product on one machine in a few minutes.

It is ``gsy-e-sdk fleet run --local-exchange`` (``orchestrator.local_run``) with the bundled
``community.json`` and its fleet ``orchestrator/fleets/community.yaml``, two workers, one
simulated day at fast pace and ``results/``.
"""

from __future__ import annotations

from pathlib import Path

import click

from gsy_e_sdk.wire.redis_url import redis_url_option
from orchestrator.local_run import LOCAL_REDIS_HELP, plan_local_run, run_local

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = PACKAGE_ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
DEFAULT_FLEET = PACKAGE_ROOT / "orchestrator" / "fleets" / "community.yaml"


@click.command("demo")
@click.option(
    "--scenario", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_SCENARIO, show_default=True
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_FLEET,
    show_default=True,
    help="Fleet config.",
)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--duration", default="1d", show_default=True, help="Simulated duration.")
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
)
@redis_url_option(LOCAL_REDIS_HELP)
def demo_command(
    scenario: Path, config_path: Path, workers: int, duration: str, results_dir: Path, redis_url: str | None
) -> None:
    """Run the local exchange and a Celery fleet for one simulated day and report."""
    run = plan_local_run(scenario, config_path, workers=workers, duration=duration, results=results_dir)
    run_local(run, redis_url)
