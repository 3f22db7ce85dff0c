"""Request bodies of the facade (REST.md 3), validated before anything reaches the exchange.

Only envelopes are checked here: the commands inside a batch are judged one by one by the
exchange, so a bad command fails alone and the rest of its batch is applied.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from gsy_e_sdk.wire.times import parse_slot


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    transaction_id: str | None = Field(default=None, min_length=1, max_length=200)


class Login(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000, repr=False)


def _energy_per_slot(value: dict[str, float]) -> dict[str, float]:
    for slot, energy in value.items():
        try:
            parse_slot(slot)
        except ValueError:
            raise ValueError(f"time slot {slot!r} is not in the format YYYY-MM-DDTHH:MM") from None
        if not math.isfinite(energy) or energy < 0:
            raise ValueError(f"energy for {slot} must be a finite number >= 0 kWh")
    return value


class _Exact(Body):
    model_config = ConfigDict(extra="forbid")


def _energy_series(field: str) -> type[Body]:
    """A body of ``{<field>: {slot: kWh}}`` (REDIS.md 9) or ``{"energy_Wh": Wh}`` (the README's raw
    REST form, for one slot the facade picks), exactly one of them, plus ``transaction_id``."""

    def check(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return None if value is None else _energy_per_slot(value)

    def one_form(self):
        if (getattr(self, field) is None) == (self.energy_Wh is None):
            raise ValueError(f"give exactly one of {field} ({{slot: kWh}}) and energy_Wh (Wh)")
        return self

    # Typed loosely: pydantic's stubs do not describe decorated validators nor a built field list.
    validators: dict[str, Any] = {
        "_slots": field_validator(field)(check),
        "_one_form": model_validator(mode="after")(one_form),
    }
    fields: dict[str, Any] = {
        field: (dict[str, float] | None, None),
        "energy_Wh": (float | None, Field(default=None, ge=0, allow_inf_nan=False)),
    }
    return create_model(field.title().replace("_", ""), __base__=_Exact, __validators__=validators, **fields)


Forecast = _energy_series("energy_forecast")
Measurement = _energy_series("energy_measurement")


class LiveGeneration(Body):
    live_data: dict[str, Any]


class GridFee(Body):
    fee_const: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    fee_percent: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_fee(self) -> GridFee:
        if (self.fee_const is None) == (self.fee_percent is None):
            raise ValueError("give exactly one of fee_const (ct/kWh) and fee_percent")
        return self


class CreateAggregator(Body):
    name: str = Field(min_length=1, max_length=200)


class AggregatorRef(Body):
    aggregator_uuid: str = Field(min_length=1, max_length=100)


class Selection(AggregatorRef):
    device_uuid: str = Field(min_length=1, max_length=100)


class Batch(AggregatorRef):
    batch_commands: dict[str, list[Any]]

    @field_validator("batch_commands", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        # One command object instead of a list is accepted, as the exchange accepts it.
        if isinstance(value, dict):
            return {key: item if isinstance(item, list) else [item] for key, item in value.items()}
        return value


class Order(Body):
    """Legacy direct offer/bid (REST.md 3.6); the exchange checks the arguments."""


def field_errors(exc: Any) -> list[dict[str, str]]:
    """pydantic errors as ``[{"field": "a.b", "message": ...}]`` without echoing input values."""
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
        for error in exc.errors()
    ]
