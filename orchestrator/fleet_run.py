"""The fleet side of ``gsy-e-sdk fleet run`` and ``gsy-e-sdk demo``: local workers, the dispatcher, progress.

Why one place: ``fleet run`` against an exchange started elsewhere, ``fleet run --local-exchange``
and the demo start the same Celery workers and dispatcher, and show the same start line and
progress; only the exchange (and so what the end report can say) differs. The workers are ready
before the fleet attaches: an exchange started with ``--start-when-selected`` begins trading the
moment the last area is selected, and an event a worker is not there to answer is a lost slot at
fast pace.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

import click
from celery import Celery

from gsy_e_sdk.wire.redact import redact_url
from gsy_e_sdk.wire.redis_connection import get_connection
from gsy_e_sdk.wire.redis_url import REDIS_URL_ENV
from gsy_e_sdk.wire.times import SLOT_FORMAT
from gsy_local_exchange.descriptor import read_descriptor
from orchestrator.celery_app import BROKER_ENV, make_app
from orchestrator.cli_options import exit_with
from orchestrator.config import FleetConfig, FleetConfigError
from orchestrator.dispatcher import Dispatcher, ReaderDied
from orchestrator.failover import start_failover
from orchestrator.processes import LocalWorkers
from orchestrator.state import StateStore

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

logger = logging.getLogger(__name__)

OnAttached = Callable[[Dispatcher], None]


def start_dispatcher(
    config: FleetConfig,
    redis_url: str,
    on_slot: Callable[[str], None] | None = None,
    fresh: bool = False,
    app: Celery | None = None,
) -> Dispatcher:
    """Attach the fleet and listen; a fleet the exchange cannot take ends the command with exit 2."""
    dispatcher = Dispatcher(
        config, get_connection(redis_url), app or make_app(config.broker_url or redis_url), on_slot=on_slot
    )
    try:
        dispatcher.start(fresh=fresh)
    except FleetConfigError as exc:
        exit_with(str(exc))
    return dispatcher


def run_or_exit(dispatcher: Dispatcher, stop: threading.Event | None = None, watch_workers: bool = True) -> None:
    """Dispatch until the run ends (or ``stop`` is set), with the shard failover watching the workers
    unless ``watch_workers`` is off (a fleet's other dispatchers: one watcher per fleet lends each
    lost queue once); a dead event reader ends the command with exit code 1."""
    config = dispatcher.config
    failover = (
        start_failover(dispatcher.app, config.shards, config.failover_after, dispatcher.store)
        if watch_workers
        else None
    )
    try:
        dispatcher.run(stop)
    except ReaderDied as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    finally:
        if failover is not None:
            failover.stop()


def worker_env(config_path: Path, config: FleetConfig, redis_url: str) -> dict[str, str]:
    return {
        "GSY_FLEET_CONFIG": str(config_path.resolve()),
        REDIS_URL_ENV: redis_url,
        BROKER_ENV: config.broker_url or redis_url,
    }


def drain(dispatcher: Dispatcher, timeout: float = 20.0, quiet: float = 3.0) -> None:
    """Let the workers finish the last events' tasks before reading metrics: until every task sent
    is done, or none was done for ``quiet`` s (a task whose slices all belonged to a closed slot
    is dropped without being counted done), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    expected = dispatcher.tasks_sent
    done, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_done = dispatcher.store.counters().get("tasks_done", 0)
        if now_done >= expected:
            return
        if now_done != done:
            done, changed = now_done, time.monotonic()
        elif time.monotonic() - changed >= quiet:
            logger.info("%d of %d tasks done; the rest were dropped or are lost", done, expected)
            return
        time.sleep(0.2)


def exchange_first_slot(config: FleetConfig, redis_url: str) -> str | None:
    """The first slot of the local exchange running on this Redis (from its descriptor); None when
    unknown (REST mode, or an exchange that publishes no descriptor)."""
    if config.exchange.mode != "redis":
        return None
    descriptor = read_descriptor(get_connection(redis_url).redis)
    if descriptor is None:
        return None
    try:
        return datetime.fromisoformat(descriptor.start_date).strftime(SLOT_FORMAT)
    except ValueError:
        return None


def exchange_label(config: FleetConfig, redis_url: str, which: str) -> str:
    """The exchange as the start line names it (``which``: e.g. "the exchange started elsewhere"),
    its URL's password hidden."""
    if config.exchange.mode == "rest":
        domain = config.exchange.domain_name or "env API_CLIENT_DOMAIN_NAME"
        return f"{which} at {redact_url(domain)} (REST), fleet state on {redact_url(redis_url)}"
    return f"{which} on {redact_url(redis_url)}"


def start_line(dispatcher: Dispatcher, exchange: str, workers: int) -> str:
    aggregators = dispatcher.aggregators
    assets = sum(len(aggregator.assets) for aggregator in aggregators)
    markets = sum(len(aggregator.markets) for aggregator in aggregators)
    config = dispatcher.config
    return (
        f"fleet {config.name}: {len(aggregators)} aggregators, {assets} assets, {markets} markets; "
        f"{config.shards} shards, {workers} workers; {exchange}"
    )


def attached_areas(dispatcher: Dispatcher) -> int:
    """Assets plus markets the fleet selected: what the exchange's ``--start-when-selected`` should be."""
    return sum(len(aggregator.assets) + len(aggregator.markets) for aggregator in dispatcher.aggregators)


class SlotProgress:
    """Slots as the dispatcher starts them: click's bar on a terminal (a counter when the total is
    unknown), else a plain line per slot, at most one every ``LINE_EVERY_S`` (and the last one).

    Each line also says how trading goes (the fleet's trade sides and rejected commands), so a
    long realtime run shows that it is alive and working. ``first_slot`` is the exchange's: a
    fleet whose first slot is a later one attached too late, which one warning line says.
    """

    LINE_EVERY_S = 1.0

    def __init__(self, total: int | None, first_slot: str | None = None, stream: TextIO | None = None) -> None:
        self.total = total
        self.first_slot = first_slot
        self.areas = 0  # attached, known once the fleet has attached
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.count = 0
        self.slot = ""
        self._store: StateStore | None = None
        self._bar: ProgressBar[str] | None = None
        self._last_line = float("-inf")
        self._shown = 0

    def status(self) -> str:
        """The current slot and how trading goes, from the fleet's counters."""
        counters = self._store.counters() if self._store else {}
        return f"{self.slot}  trade sides {counters.get('trades', 0)}  rejected {counters.get('commands_rejected', 0)}"

    def line(self) -> str:
        return f"slot {self.count}{f'/{self.total}' if self.total else ''} {self.status()}"

    def showing(self, store: StateStore, areas: int) -> SlotProgress:
        """Show progress with the fleet's counters from ``store``, within a ``with`` block."""
        self._store = store
        self.areas = areas
        return self

    def __enter__(self) -> SlotProgress:
        if self.tty and self.total:
            self._bar = click.progressbar(
                length=self.total, label="slots", show_pos=True, file=self.stream, item_show_func=lambda item: item
            )
            self._bar.__enter__()
        return self

    def __call__(self, slot: str) -> None:
        """The dispatcher's ``on_slot``."""
        self.count += 1
        self.slot = slot
        if self.count == 1:
            self._check_first(slot)
        if self._bar is not None:
            self._bar.update(1, self.status())
        elif self.tty:
            click.echo("\r" + self.line(), nl=False, file=self.stream)
        elif time.monotonic() - self._last_line >= self.LINE_EVERY_S:
            self._echo_line()

    def _echo_line(self) -> None:
        click.echo(self.line(), file=self.stream)
        self._last_line = time.monotonic()
        self._shown = self.count

    def _check_first(self, slot: str) -> None:
        if self.first_slot and slot > self.first_slot:
            click.echo(
                f"warning: the exchange was already at slot {slot} when the fleet attached (its first slot: "
                f"{self.first_slot}): the slots before were traded without the fleet; start the exchange with "
                f"--start-when-selected {self.areas}",
                err=True,
            )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, traceback)
        elif self.tty:
            click.echo(file=self.stream)
        elif self.count > self._shown:
            self._echo_line()


def run_fleet(
    config_path: Path,
    config: FleetConfig,
    redis_url: str,
    workers: int,
    *,
    exchange: str,
    total_slots: int | None,
    first_slot: str | None,
    log_dir: Path | None = None,
    fresh: bool = False,
    on_attached: Iterable[OnAttached] = (),
    stop: threading.Event | None = None,
) -> Dispatcher:
    """Start ``workers`` local workers, attach the fleet once they are ready, print the start line,
    dispatch to the end with progress, and let the workers finish the last tasks.

    ``on_attached`` run once the fleet listens and before the first event is dispatched (e.g. the
    metrics server starts there); ``stop`` ends the dispatch early (the exchange is gone). Returns
    the finished dispatcher, for the report.
    """
    app = make_app(config.broker_url or redis_url)
    pool = LocalWorkers(app, workers, config.shards, worker_env(config_path, config, redis_url), log_dir=log_dir)
    try:
        try:
            pool.start()
        except RuntimeError as exc:
            where = f"; see {log_dir}" if log_dir else ""
            raise click.ClickException(f"{exc}{where}") from None
        progress = SlotProgress(total_slots, first_slot)
        dispatcher = start_dispatcher(config, redis_url, on_slot=progress, fresh=fresh, app=app)
        areas = attached_areas(dispatcher)
        click.echo(start_line(dispatcher, exchange, workers))
        click.echo(
            f"attached {areas} areas (assets + markets): the exchange's --start-when-selected must be {areas} "
            "for none to miss the first slot"
        )
        for hook in on_attached:
            hook(dispatcher)
        with progress.showing(dispatcher.store, areas):
            run_or_exit(dispatcher, stop)
        drain(dispatcher)
    finally:
        pool.stop()
    return dispatcher
