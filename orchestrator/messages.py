"""Typed payloads that travel as Celery task arguments (JSON)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.fleet_key import keyed_uuid


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssetItem(_Message):
    uuid: str
    name: str
    kind: str
    info: dict[str, Any] = Field(default_factory=dict)
    fee_to_root: float | None = None  # None: a market on the way has no fee yet (first slot)


class MarketItem(_Message):
    uuid: str
    name: str
    last_market_stats: dict[str, Any] = Field(default_factory=dict)
    current_market_fee: float | None = None
    last_market_fee: float | None = None


class SliceTask(_Message):
    """One event for one slice of one aggregator: only the data that slice needs."""

    fleet: str
    aggregator: str
    aggregator_uuid: str
    slice: int
    shard: int
    event: Literal["market", "tick", "finish"]
    slot: str | None = None
    completion: int = 0
    market_maker_rate: float | None = None
    feed_in_tariff_rate: float | None = None
    dispatched_at: float
    transaction_id: str  # of the slice's batch, derived by the dispatcher (``slice_transaction_id``)
    assets: list[AssetItem] = Field(default_factory=list)
    markets: list[MarketItem] = Field(default_factory=list)


def slice_transaction_id(
    key: bytes, aggregator_uuid: str, slot: str | None, event: str, completion: int, index: int
) -> str:
    """Same decision, same id (a redelivered task can never place its orders twice), keyed with
    the fleet's secret so no other user of the exchange can predict it."""
    return keyed_uuid(key, f"{aggregator_uuid}:{slot}:{event}:{completion}:{index}")


def slice_payloads(argument: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A slice task's argument as a list of slice payloads.

    The dispatcher sends each shard one task per burst of events, carrying a list of slices;
    a single slice (an operator's resync, a task queued by an older dispatcher) is a dict.
    """
    return [argument] if isinstance(argument, dict) else list(argument)
