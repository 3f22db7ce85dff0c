"""Operator commands: validated here, carried as Celery tasks to the shard that owns the target.

Routing uses the placement the dispatcher published when it attached the fleet (which device
is in which slice on which shard), so a command queues behind the events that shard already
has, and any machine that reaches the broker can send one. ``--wait`` reads the worker's answer
from a Redis list the task pushes to.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from celery import Celery
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gsy_e_sdk.wire.slug import slugify
from orchestrator.config import FleetConfig
from orchestrator.state import StateStore
from workers.strategies import get_strategy

TASK_NAME = "workers.operator_command"
Kind = Literal["order", "pause", "resume", "set_param", "grid_fee", "resync"]
NOT_TRADING_YET = "no market event received yet: the fleet has not started trading"
# What an asset can still trade in the slot, by order side, as the exchange's events report it.
_ENERGY_LEFT = {"offer": ("available_energy_kWh", "energy_to_sell"), "bid": ("energy_requirement_kWh", "energy_to_buy")}
_VERB = {"offer": "sell", "bid": "buy"}


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
    commands: list[OperatorCommand] = field(default_factory=list)  # one per task, in order


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
        command = self._command(
            "order",
            placement,
            {placement.uuid: name},
            side=side,
            energy=energy,
            rate=rate,
            replace_existing=replace_existing,
        )
        if self.store.current_slot() is None:
            raise OperatorError(f"{NOT_TRADING_YET}; an order for {name!r} has no slot to go to")
        return self._send([command], [placement.shard])

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
        kinds = self.store.meta("kinds")
        problems = {}
        for name, placement in targets.items():
            try:
                self._check_params(name, placement, params, kinds)
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

    def _check_params(self, name: str, placement: Placement, params: dict[str, Any], kinds: dict[str, str]) -> None:
        strategy = self.config.asset_strategies.get(name) or self.config.strategies.get(kinds.get(placement.uuid, ""))
        if strategy is None and placement.uuid not in kinds:
            # The strategy follows the asset's kind, which only the exchange's events tell.
            raise OperatorError(f"{NOT_TRADING_YET}, so the kind and strategy of asset {name!r} are not known yet")
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
        return Enqueued(command_id, task_ids, commands)

    def wait(self, enqueued: Enqueued, timeout: float) -> list[dict[str, Any]]:
        """The workers' answers, one per task; raises ``TimeoutError`` if one does not come."""
        return self.store.wait_results(enqueued.command_id, len(enqueued.task_ids), timeout)

    def explain(self, enqueued: Enqueued, answers: list[dict[str, Any]]) -> list[str]:
        """Why each failed answer failed, one line each.

        The exchange refuses an order beyond what the asset can trade without a reason (as the
        reference does), so for an order the energy the asset had left in the last event the
        fleet handled is given beside the exchange's words.
        """
        order = next((command for command in enqueued.commands if command.kind == "order"), None)
        reasons = []
        for answer in answers:
            if answer.get("status") != "error":
                continue
            said = answer.get("error") or "; ".join(_exchange_errors(answer.get("response")))
            why = self._order_refusal(order) if order is not None else None
            reasons.append("; ".join(part for part in (why, said) if part) or f"{answer.get('command')} failed")
        return reasons

    def _order_refusal(self, command: OperatorCommand) -> str | None:
        last = self.store.last_slice(command.aggregator_uuid, command.slice or 0)
        if last is None:
            return NOT_TRADING_YET
        device = next(iter(command.devices))
        asset = next((item for item in last.get("assets", ()) if item.get("uuid") == device), None)
        side = command.side or "offer"
        info = (asset.get("info") or {}) if asset else {}
        left = next((info[key] for key in _ENERGY_LEFT[side] if isinstance(info.get(key), (int, float))), None)
        if asset is None or left is None or command.energy is None or command.energy <= left:
            return None
        return (
            f"{asset.get('kind', 'asset')} {command.devices[device]!r} had {left:g} kWh to {_VERB[side]} in slot "
            f"{last.get('slot')} (at {last.get('completion', 0)} %), and the {side} asked for {command.energy:g} kWh"
        )


def _exchange_errors(response: Any) -> list[str]:
    """The exchange's error texts in a batch answer (``responses``: device -> entries)."""
    if not isinstance(response, dict) or not isinstance(response.get("responses"), dict):
        return []
    return [
        str(entry.get("error_message") or entry.get("message") or f"{entry.get('command')} refused")
        for entries in response["responses"].values()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict) and entry.get("status") != "ready"
    ]
