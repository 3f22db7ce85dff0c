"""Request bodies of the facade (REST.md 3), validated before anything reaches the exchange.

An area command's body is the protocol's model of its arguments
(``gsy_e_sdk/wire/command_params.py``, which the SDK's builder and the exchange validate with
too) plus ``transaction_id``, so the facade refuses what the exchange would and nothing else.
Batches are checked as envelopes only: the commands inside are judged one by one by the
exchange, so a bad command fails alone and the rest of its batch is applied.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, create_model, field_validator, model_validator

from gsy_e_sdk.wire import command_params as p
from gsy_e_sdk.wire.catalogue import CATALOGUE

TransactionId = Annotated[str | None, Field(min_length=1, max_length=200)]
Params = TypeVar("Params", bound=p.CommandParams)


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    transaction_id: TransactionId = None


class Login(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000, repr=False)


def command_body(params: type[Params], name: str | None = None) -> type[Params]:
    """``params`` plus the ``transaction_id`` every body may carry (REST.md 2)."""
    return create_model(name or f"{params.__name__}Body", __base__=params, transaction_id=(TransactionId, None))


def _energy_series(params: type[Params], field: str) -> type[Params]:
    """A body of ``{<field>: {slot: kWh}}`` (REDIS.md 9) or ``{"energy_Wh": Wh}`` (the README's raw
    REST form, for one slot the facade picks), exactly one of them, plus ``transaction_id``."""

    def one_form(cls: type, value: Any) -> Any:
        if isinstance(value, dict) and (value.get(field) is None) == (value.get("energy_Wh") is None):
            raise ValueError(f"give exactly one of {field} ({{slot: kWh}}) and energy_Wh (Wh)")
        return value

    # Typed loosely: pydantic's stubs describe neither a validator built here nor a built field list.
    validators: dict[str, Any] = {"_one_form": model_validator(mode="before")(one_form)}
    # The map becomes optional (energy_Wh may replace it); its values are checked as the command's.
    fields: dict[str, Any] = {
        field: (Annotated[dict[str, float] | None, PlainValidator(p.optional(p.energy_series))], None),
        "energy_Wh": (Annotated[float | None, PlainValidator(p.optional(p.non_negative))], None),
        "transaction_id": (TransactionId, None),
    }
    return create_model(
        field.title().replace("_", ""),
        __base__=params,
        __validators__=validators,
        **fields,
    )


Forecast = _energy_series(p.SetEnergyForecast, "energy_forecast")
Measurement = _energy_series(p.SetEnergyMeasurement, "energy_measurement")
GridFee = command_body(p.GridFees, "GridFee")
_SPECIAL = {body.command: body for body in (Forecast, Measurement, GridFee)}
COMMAND_BODIES: dict[str, type[BaseModel]] = {
    spec.name: _SPECIAL.get(spec.name) or command_body(spec.params) for spec in CATALOGUE
}  # the body model of each catalogue command's routes


class LiveGeneration(Body):
    live_data: dict[str, Any]


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


def field_errors(exc: Any) -> list[dict[str, str]]:
    """pydantic errors as ``[{"field": "a.b", "message": ...}]`` without echoing input values."""
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
        for error in exc.errors()
    ]
