"""What a worker process keeps between tasks: config, strategies, one Redis connection.

Built lazily on the first task of each process (after Celery forks), from the fleet config file
named by ``GSY_FLEET_CONFIG``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gsy_e_sdk.wire.per_process import PerProcess
from gsy_e_sdk.wire.redis_connection import RedisConnection, get_connection
from orchestrator.config import FleetConfig, StrategyConfig, load_fleet_config
from orchestrator.exchange_link import ExchangeLink, make_link
from orchestrator.state import StateStore
from workers.strategies import StrategySpec, get_strategy

logger = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    config: FleetConfig
    connection: RedisConnection
    store: StateStore
    link: ExchangeLink
    _strategies: dict[tuple[str, str], tuple[StrategySpec, BaseModel] | None] = field(default_factory=dict)
    _overridden: dict[tuple[str, str, str], tuple[StrategySpec, BaseModel]] = field(default_factory=dict)
    _validated: dict[tuple[int, str], tuple[StrategySpec, BaseModel] | None] = field(default_factory=dict)

    def strategy(
        self, name: str, kind: str, overrides: dict[str, Any] | None = None
    ) -> tuple[StrategySpec, BaseModel] | None:
        """The strategy and validated parameters for an asset (or market), cached per process.

        ``overrides`` are an operator's live parameter changes; invalid ones are logged and the
        fleet file's parameters stay in force.
        """
        base = self._base_strategy(name, kind)
        if base is None or not overrides:
            return base
        key = (name, kind, json.dumps(overrides, sort_keys=True))
        if key not in self._overridden:
            spec, params = base
            try:
                self._overridden[key] = (spec, spec.params_model.model_validate({**params.model_dump(), **overrides}))
            except ValueError as exc:
                logger.error("ignored parameters %s for %s: %s", overrides, name, exc)
                self._overridden[key] = base
        return self._overridden[key]

    def _base_strategy(self, name: str, kind: str) -> tuple[StrategySpec, BaseModel] | None:
        key = (name, kind)
        if key not in self._strategies:
            chosen = self.config.strategy_for(name, kind)
            self._strategies[key] = None if chosen is None else self._validate(chosen, kind)
        return self._strategies[key]

    def _validate(self, chosen: StrategyConfig, kind: str) -> tuple[StrategySpec, BaseModel] | None:
        """One validated parameter object per configured strategy and kind, shared by its assets
        (per asset, the models cost kilobytes each in fleets of thousands)."""
        key = (id(chosen), kind)
        if key not in self._validated:
            spec = get_strategy(chosen.name)
            self._validated[key] = (spec, chosen.validated_params()) if spec.drives(kind) else None
        return self._validated[key]

    def submit(
        self, aggregator_uuid: str, batch: dict[str, list[dict]], transaction_id: str, wait: bool = False
    ) -> dict[str, Any] | None:
        """Send a batch; with ``wait``, the exchange's answer where the link can return it (Redis)."""
        return self.link.submit(aggregator_uuid, batch, transaction_id, self.config.task_timeout, wait)


def _build_context() -> WorkerContext:
    path = os.environ.get("GSY_FLEET_CONFIG")
    if not path:
        raise RuntimeError("GSY_FLEET_CONFIG must name the fleet config file for workers")
    config = load_fleet_config(path)
    connection = get_connection(config.exchange_redis_url())
    return WorkerContext(config, connection, StateStore(connection.redis, config.name), make_link(config, connection))


_context: PerProcess[WorkerContext] = PerProcess(_build_context)


def context() -> WorkerContext:
    """This process's context (a forked pool child builds its own)."""
    return _context.get()


def forget_context() -> None:
    """Drop the context, so the next task reads the fleet config again (tests switch fleets)."""
    _context.forget()
