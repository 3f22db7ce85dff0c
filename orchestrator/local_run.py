"""A whole run on one machine: Redis, the local exchange, the fleet's dispatcher and workers, a report.

``gsy-e-sdk demo`` (the bundled community) and ``gsy-e-sdk fleet run --local-exchange SCENARIO``
are this one run with different defaults, so what one user learns from the demo holds for their
own fleet. Redis: ``--redis-url``, else env ``REDIS_URL``, else the fleet file's, else
127.0.0.1:6379 if it answers, else an embedded server. The exchange is strict like the reference
exchange (``--strict-reference``) and waits for the fleet: ``--start-when-selected`` is the
number of areas the fleet attaches (counted from the scenario before anything starts), and the
dispatcher listens before it selects them, so no asset misses the first market event. Then a
summary table and ``results/``: ``report.html`` (tables and plot in one page), ``summary.json``,
``slots.csv``, the plot as PNG, the exchange's own files under ``exchange/`` and every process's
log under ``logs/``. Bad options end the command with one ``Error:`` line and exit code 2 before
anything starts.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as day_start
from pathlib import Path
from typing import Any, NoReturn

import click
import redis

from gsy_e_sdk.wire.redis_url import chosen_redis_url
from gsy_e_sdk.wire.times import SLOT_FORMAT
from gsy_local_exchange.cli import PaceType
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.durations import parse_duration
from gsy_local_exchange.embedded_redis import RedisUnavailable, redis_url
from gsy_local_exchange.engine import GridEngine
from gsy_local_exchange.participants import area_prefixes
from gsy_local_exchange.runner import FAST
from gsy_local_exchange.scenario import Scenario, ScenarioError, load_scenario
from orchestrator.attach import plan_fleet
from orchestrator.cli_options import exit_with, load_or_exit, require_or_exit
from orchestrator.config import FleetConfig, FleetConfigError
from orchestrator.fleet_run import OnAttached, exchange_label, run_fleet
from orchestrator.plots import plot_png
from orchestrator.processes import (
    exchange_command,
    exchange_env,
    sigterm_as_interrupt,
    stop_processes,
    wait_for_exchange,
)
from orchestrator.report import (
    ScenarioFacts,
    build_summary,
    per_slot,
    render_table,
    scenario_facts,
    slot_records,
    write_data,
)
from orchestrator.report_html import render_report

logger = logging.getLogger(__name__)
LOCAL_REDIS_HELP = (
    "Redis to use [env REDIS_URL]; default: the fleet file's exchange.redis_url, else 127.0.0.1:6379 if it answers, "
    "else an embedded server."
)
PLOT = "prices_and_energy.png"
REPORT = "report.html"
# After the exchange exits, the dispatcher has this long to see its finish events; then (an
# exchange that crashed sends none) the run ends instead of waiting forever.
FINISH_GRACE_S = 15.0


@dataclass(frozen=True)
class LocalRun:
    """A checked plan: every option valid and the fleet known to fit the scenario."""

    scenario: Path
    config_path: Path
    config: FleetConfig
    workers: int
    facts: ScenarioFacts
    results: Path
    pace: str
    areas: int  # assets + markets the fleet attaches: the exchange's --start-when-selected

    @property
    def files(self) -> list[Path]:
        """Everything a finished run writes (``logs/`` as a directory)."""
        exchange = self.results / "exchange"
        return [
            *(self.results / name for name in (REPORT, "summary.json", "slots.csv", PLOT)),
            *(exchange / name for name in ("trades.csv", "orders.csv", "summary.json")),
            self.results / "logs",
        ]

    def listing(self, relative: bool = False) -> list[str]:
        """``files`` as shown to the user, a directory with a trailing slash."""
        return [
            str(path.relative_to(self.results) if relative else path) + ("/" if path.is_dir() else "")
            for path in self.files
        ]

    def exchange_args(self) -> list[str]:
        facts = self.facts
        return [
            "--strict-reference",
            "--pace",
            self.pace,
            "--start-when-selected",
            str(self.areas),
            "--start-date",
            facts.start.strftime(SLOT_FORMAT),
            "--duration",
            f"{int(facts.slot_count * facts.slot_length.total_seconds())}s",
            "--results",
            str(self.results / "exchange"),
        ]


def _option_error(option: str, message: str) -> NoReturn:
    exit_with(f"{option}: {message}")


def plan_local_run(
    scenario_path: Path,
    config_path: Path,
    *,
    workers: int,
    duration: str | None,
    results: Path,
    pace: str | None = None,
    scenario_option: str = "--scenario",
) -> LocalRun:
    """The run's plan, or one ``Error:`` line naming the option at fault and exit 2.

    ``duration`` None: the scenario's; ``pace`` None: fast. ``scenario_option``: the option that
    named the scenario.
    """
    pace = pace or FAST
    config = load_or_exit(config_path)
    if config.exchange.mode != "redis":
        _option_error(scenario_option, f"the local exchange speaks Redis; {config_path} sets exchange.mode rest")
    try:
        PaceType().convert(pace, None, None)
    except click.BadParameter as exc:
        _option_error("--pace", exc.message)
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as exc:
        _option_error(scenario_option, str(exc))
    facts = _facts_or_exit(scenario, duration, scenario_option)
    return LocalRun(
        scenario_path, config_path, config, workers, facts, results, pace, _areas_or_exit(config, scenario, facts)
    )


def _facts_or_exit(scenario: Scenario, duration: str | None, scenario_option: str) -> ScenarioFacts:
    settings = scenario.settings
    if duration is None:
        length = settings.sim_duration
    else:
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            _option_error("--duration", str(exc))
        if length < settings.slot_length:
            _option_error(
                "--duration",
                f"{duration!r} is shorter than one slot of the scenario "
                f"({settings.slot_length.total_seconds() / 60:g} min)",
            )
    # The exchange is given this start, so the report knows every slot, traded or not.
    start = datetime.combine(settings.start_date or datetime.now(UTC).date(), day_start())
    try:
        return scenario_facts(scenario, start, length)
    except ValueError as exc:  # e.g. an asset's profile the exchange could not read either
        _option_error(scenario_option, str(exc))


def _areas_or_exit(config: FleetConfig, scenario: Scenario, facts: ScenarioFacts) -> int:
    """Assets plus markets the fleet will select, found as the attach finds them, from the
    areas the exchange will offer; a fleet that does not fit the scenario ends here."""
    settings = scenario.settings
    clock = SimulationClock(facts.start, settings.slot_length, settings.tick_length, settings.slot_length)
    offered = set(area_prefixes(GridEngine(scenario, clock).areas))
    try:
        plan = plan_fleet(config, offered)
    except FleetConfigError as exc:
        _option_error("--config", f"{exc} (scenario {facts.name})")
    return sum(len(assets) + len(markets) for _, assets, markets in plan)


def run_local(run: LocalRun, redis_url_option: str | None, on_attached: Iterable[OnAttached] = ()) -> None:
    """Run the plan to its end and report; Redis that does not answer is one error line and exit 2."""
    started = time.monotonic()
    explicit = chosen_redis_url(redis_url_option) or run.config.exchange.redis_url
    try:
        with sigterm_as_interrupt(), redis_url(explicit) as url:
            if run.config.broker_url and run.config.broker_url != url:
                require_or_exit(run.config.broker_url, what="the Celery broker")
            summary = _run(run, url, started, on_attached)
    except RedisUnavailable as exc:
        exit_with(str(exc))
    click.echo(render_table(summary))
    click.echo("results: " + ", ".join(run.listing()))


def _run(run: LocalRun, url: str, started: float, on_attached: Iterable[OnAttached]) -> dict[str, Any]:
    facts = run.facts
    logs = run.results / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    client = redis.Redis.from_url(url)
    exchange_log = open(logs / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(run.scenario, *run.exchange_args()),
        stdout=exchange_log,
        stderr=subprocess.STDOUT,
        env=exchange_env(url),
    )
    stop = threading.Event()
    try:
        try:
            wait_for_exchange(client, exchange)
        except RuntimeError as exc:
            raise click.ClickException(f"{exc}; see {logs / 'exchange.log'}") from None
        threading.Thread(target=_stop_after_exit, args=(exchange, stop), name="exchange-watch", daemon=True).start()

        dispatcher = run_fleet(
            run.config_path,
            run.config,
            url,
            run.workers,
            exchange=exchange_label(run.config, url, f"local exchange ({run.scenario.name})"),
            total_slots=facts.slot_count,
            first_slot=facts.start.strftime(SLOT_FORMAT),
            log_dir=logs,
            fresh=True,
            on_attached=on_attached,
            stop=stop,
        )
        if exchange.wait(timeout=60):
            raise click.ClickException(
                f"the exchange exited with code {exchange.returncode}; see {logs / 'exchange.log'}"
            )
        summary = build_summary(
            json.loads((run.results / "exchange" / "summary.json").read_text()),
            dispatcher.store.latencies(),
            dispatcher.store.counters(),
            time.monotonic() - started,
            facts,
        )
        _write_results(run, summary)
    finally:
        stop_processes([exchange], timeout=10)
        exchange_log.close()
        client.close()
    return summary


def _stop_after_exit(exchange: subprocess.Popen, stop: threading.Event) -> None:
    exchange.wait()
    stop.wait(FINISH_GRACE_S)
    stop.set()


def _write_results(run: LocalRun, summary: dict[str, Any]) -> None:
    slots = per_slot(run.results / "exchange" / "trades.csv", run.facts)
    write_data(run.results, summary, slot_records(slots, run.facts))
    plot = plot_png(slots, run.facts)
    (run.results / PLOT).write_bytes(plot)
    page = render_report(summary, slots, run.facts, plot, run.listing(relative=True))
    (run.results / REPORT).write_text(page, encoding="utf-8")
