"""Operator commands: validated here, carried as Celery tasks to the shard that owns the target.

Routing uses the placement the dispatcher published when it attached the fleet (which device
is in which slice on which shard), so a command queues behind the events that shard already
has, and any machine that reaches the broker can send one. ``--wait`` reads the worker's answer
from a Redis list the task pushes to.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from celery import Celery
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gsy_e_sdk.wire.slug import slugify
from orchestrator.config import FleetConfig
from orchestrator.state import StateStore
from workers.strategies import get_strategy

TASK_NAME = "workers.operator_command"
Kind = Literal["order", "pause", "resume", "set_param", "grid_fee", "resync"]


class OperatorError(ValueError):
    """An unknown target or an invalid argument; the message says which."""


class Placement(BaseModel):
    """Where one device lives, as the dispatcher published it."""

    uuid: str
    aggregator: str
    aggregator_uuid: str
    slice: int
    shard: int
    market: bool = False


class OperatorCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    fleet: str
    kind: Kind
    aggregator: str
    aggregator_uuid: str
    devices: dict[str, str] = Field(default_factory=dict)  # uuid -> name of the devices it acts on
    side: Literal["bid", "offer"] | None = None
    energy: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    rate: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    fee: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    replace_existing: bool = True  # an order replaces the asset's open orders of that side
    params: dict[str, Any] = Field(default_factory=dict)
    slice: int | None = None  # the slice it acts on (one task, and one batch id, per slice)

    @field_validator("energy", "rate", "fee")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


@dataclass
class Enqueued:
    command_id: str
    task_ids: list[str]


class Operator:
    def __init__(self, config: FleetConfig, store: StateStore, app: Celery) -> None:
        self.config = config
        self.store = store
        self.app = app

    # ------------------------------------------------------------------ lookups
    def placements(self) -> dict[str, Placement]:
        raw = self.store.meta("placements")
        if not raw:
            raise OperatorError(f"fleet {self.config.name!r} is not attached: start its dispatcher first")
        return {name: Placement.model_validate(value) for name, value in raw.items()}

    def _device(self, name: str, market: bool | None = None) -> tuple[str, Placement]:
        placements = self.placements()
        found = placements.get(name)
        if found is None and market is not False:
            name = slugify(name)  # markets are placed under their channel slug
            found = placements.get(name)
        if found is None or (market is not None and found.market != market):
            kind = {True: "market", False: "asset", None: "asset or market"}[market]
            known = sorted(n for n, p in placements.items() if market is None or p.market == market)
            raise OperatorError(
                f"unknown {kind} {name!r}; the fleet has: {', '.join(known[:20])}" + (" ..." if len(known) > 20 else "")
            )
        return name, found

    def _aggregator(self, name: str) -> tuple[str, dict[str, Placement]]:
        members = {device: p for device, p in self.placements().items() if p.aggregator == name}
        if not members:
            names = sorted({p.aggregator for p in self.placements().values()})
            raise OperatorError(f"unknown aggregator {name!r}; the fleet has: {', '.join(names)}")
        return name, members

    # ------------------------------------------------------------------ commands
    def order(self, asset: str, side: str, energy: float, rate: float, replace_existing: bool = True) -> Enqueued:
        """A manual order; by default it replaces the strategy's open orders of that side, which
        already hold all of the asset's energy. Pause the asset first to keep the order standing."""
        name, placement = self._device(asset, market=False)
        return self._send(
            [
                self._command(
                    "order",
                    placement,
                    {placement.uuid: name},
                    side=side,
                    energy=energy,
                    rate=rate,
                    replace_existing=replace_existing,
                )
            ],
            [placement.shard],
        )

    def pause(self, asset: str | None = None, aggregator: str | None = None, resume: bool = False) -> Enqueued:
        kind = "resume" if resume else "pause"
        groups = self._by_slice(self._targets(asset, aggregator))
        return self._send(
            [self._command(kind, first, devices) for first, devices in groups], [first.shard for first, _ in groups]
        )

    def set_param(self, asset: str | None, aggregator: str | None, params: dict[str, Any]) -> Enqueued:
        if not params:
            raise OperatorError("give at least one parameter, e.g. final_rate=30")
        targets = self._targets(asset, aggregator)
        problems = {}
        for name, placement in targets.items():
            try:
                self._check_params(name, placement, params)
            except OperatorError as exc:
                problems[name] = str(exc)
        if asset is not None and problems:
            raise OperatorError(problems[asset])
        # For a whole aggregator: the assets whose strategy takes these parameters.
        targets = {name: placement for name, placement in targets.items() if name not in problems}
        if not targets:
            raise OperatorError(f"no asset of {aggregator!r} takes these parameters: {next(iter(problems.values()))}")
        groups = self._by_slice(targets)
        return self._send(
            [self._command("set_param", first, devices, params=params) for first, devices in groups],
            [first.shard for first, _ in groups],
        )

    def grid_fee(self, market: str, fee: float) -> Enqueued:
        name, placement = self._device(market, market=True)
        return self._send([self._command("grid_fee", placement, {placement.uuid: name}, fee=fee)], [placement.shard])

    def resync(self, aggregator: str) -> Enqueued:
        _, members = self._aggregator(aggregator)
        groups = self._by_slice(members)
        return self._send(
            [self._command("resync", first, devices) for first, devices in groups], [first.shard for first, _ in groups]
        )

    # ------------------------------------------------------------------ plumbing
    def _targets(self, asset: str | None, aggregator: str | None) -> dict[str, Placement]:
        if asset is not None and aggregator is None:
            name, placement = self._device(asset, market=False)
            return {name: placement}
        if aggregator is not None and asset is None:
            _, members = self._aggregator(aggregator)
            return {name: p for name, p in members.items() if not p.market}
        raise OperatorError("name exactly one target: an asset or --aggregator")

    @staticmethod
    def _by_slice(targets: dict[str, Placement]) -> list[tuple[Placement, dict[str, str]]]:
        """One task per slice, so each lands on the shard that owns those devices."""
        groups: dict[tuple[str, int], tuple[Placement, dict[str, str]]] = {}
        for name, placement in sorted(targets.items()):
            key = (placement.aggregator_uuid, placement.slice)
            groups.setdefault(key, (placement, {}))[1][placement.uuid] = name
        return list(groups.values())

    def _check_params(self, name: str, placement: Placement, params: dict[str, Any]) -> None:
        kind = self.store.meta("kinds") or {}
        strategy = self.config.asset_strategies.get(name) or self.config.strategies.get(kind.get(placement.uuid, ""))
        if strategy is None:
            raise OperatorError(f"asset {name!r} has no strategy whose parameters could change")
        model = get_strategy(strategy.name).params_model
        unknown = sorted(set(params) - set(model.model_fields))
        if unknown:
            raise OperatorError(
                f"strategy {strategy.name!r} has no parameter {', '.join(unknown)}; "
                f"it has {', '.join(sorted(model.model_fields))}"
            )
        try:
            model.model_validate({**strategy.params, **params})
        except ValueError as exc:
            raise OperatorError(f"invalid parameters for {strategy.name!r}: {exc}") from None

    def _command(self, kind: str, placement: Placement, devices: dict[str, str], **fields: Any) -> OperatorCommand:
        return OperatorCommand(
            fleet=self.config.name,
            kind=kind,
            aggregator=placement.aggregator,
            aggregator_uuid=placement.aggregator_uuid,
            devices=devices,
            slice=placement.slice,
            **fields,
        )

    def _send(self, commands: list[OperatorCommand], shards: list[int]) -> Enqueued:
        command_id = str(uuid.uuid4())
        task_ids = []
        for command, shard in zip(commands, shards, strict=True):
            command.id = command_id
            result = self.app.send_task(
                TASK_NAME,
                args=[command.model_dump()],
                queue=f"shard-{shard}",
                argsrepr=f"({command.kind} {command.aggregator} slice {command.slice} "
                f"{', '.join(sorted(command.devices.values()))[:80]})",
            )
            task_ids.append(result.id)
        return Enqueued(command_id, task_ids)

    def wait(self, enqueued: Enqueued, timeout: float) -> list[dict[str, Any]]:
        """The workers' answers, one per task; raises ``TimeoutError`` if one does not come."""
        return self.store.wait_results(enqueued.command_id, len(enqueued.task_ids), timeout)
