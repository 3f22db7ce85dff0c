"""The arguments of every area command, one model each (REDIS.md 6.2 and 9, REST.md 3).

The SDK's batch builder, the exchange's command handlers and the facade's request bodies all
validate through these models, so an argument one of them accepts is one the others accept. A
validated model is also the typed command itself: ``wire()`` gives the object that travels in
``batch_commands`` (``type`` plus the arguments), the same for an order a user builds with the
SDK and one a fleet strategy emits.

What the models cannot know stays with the exchange: whether the asset's kind supports the
command, whether a ``time_slot`` names an open market, the energy an asset has to offer, the
exchange's smallest order and its fee type.

Messages name the rule, never the value (the facade returns them to whoever sent the value);
:func:`describe` adds the value where the caller wants it, as the SDK does for its users.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from datetime import datetime
from numbers import Real
from typing import Annotated, Any, ClassVar, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from gsy_e_sdk.wire.times import format_slot, parse_slot

Checked = TypeVar("Checked")

MAX_CONSTANT_FEE = 10_000  # ct/kWh, the local exchange's bound for ``fee_const``
MAX_FEE_PERCENT = 100
SLOT_EXAMPLE = "2021-07-01T12:15"

# ---------------------------------------------------------------------------------------------- values


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def number(value: Any) -> float:
    """A finite number, returned as given (an int stays an int on the wire); bools are refused."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _error("number", "must be a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        finite = False
    if not finite:
        raise _error("finite_number", "must be finite")
    return cast(float, value)  # as given: an int stays an int


def positive_energy(value: Any) -> float:
    """The energy of an order in kWh: > 0 (the exchange's smallest order is its own rule)."""
    if number(value) <= 0:
        raise _error("positive", "must be > 0 kWh")
    return value


def non_negative(value: Any) -> float:
    """Prices, rates and fees: >= 0."""
    if number(value) < 0:
        raise _error("non_negative", "must be >= 0")
    return value


def _at_most(limit: int, unit: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if non_negative(value) > limit:
            raise _error("too_large", f"must be <= {limit}{unit}")
        return value

    return check


def time_slot(value: Any) -> str | None:
    """None (the current spot market), a slot string the exchange can parse, or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_slot(value)
    if not isinstance(value, str):
        raise _error("time_slot", "must be a time slot string or null")
    try:
        parse_slot(value)
    except ValueError:
        raise _error(
            "time_slot", f"is an unparsable time slot; expected YYYY-MM-DDTHH:MM, e.g. {SLOT_EXAMPLE}"
        ) from None
    return value


def order_id(value: Any) -> str | None:
    """An order id, or None meaning all of the asset's open orders of that side."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _error("order_id", "must be a non-empty string or null")
    return value


def energy_series(value: Any) -> dict[str, float]:
    """A forecast or measurement ``{time slot: kWh}``, kWh >= 0; datetime keys become slot strings."""
    if not isinstance(value, dict) or not value:
        raise _error("energy_series", "must be a non-empty dict {time slot: kWh}")
    series: dict[str, float] = {}
    for slot, energy in value.items():
        key = format_slot(slot) if isinstance(slot, datetime) else slot
        try:
            parse_slot(key)
        except ValueError:
            raise _error(
                "energy_series",
                f"has a key that is an unparsable time slot; expected YYYY-MM-DDTHH:MM, e.g. {SLOT_EXAMPLE}",
            ) from None
        try:
            series[key] = non_negative(energy)
        except PydanticCustomError as exc:
            raise _error("energy_series", f"values (kWh) {exc.message()}") from None
    return series


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _error("boolean", "must be True or False")
    return value


def _attributes(value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise _error("attributes", "must be a dict")
    return value


def _requirements(value: Any) -> list[dict[str, Any]] | None:
    if value is not None and not (isinstance(value, list) and all(isinstance(item, dict) for item in value)):
        raise _error("requirements", "must be a list of dicts")
    return value


def optional(check: Callable[[Any], Checked]) -> Callable[[Any], Checked | None]:
    """``check``, letting None through."""
    return lambda value: None if value is None else check(value)


# Plain validators: the checks above and nothing else, so messages stay ours and ints stay ints.
Energy = Annotated[float, PlainValidator(positive_energy)]
Price = Annotated[float, PlainValidator(non_negative)]
Flag = Annotated[bool, PlainValidator(_boolean)]
TimeSlot = Annotated[str | None, PlainValidator(time_slot)]
OrderId = Annotated[str | None, PlainValidator(order_id)]
EnergySeries = Annotated[dict[str, float], PlainValidator(energy_series)]
ConstantFee = Annotated[float | None, PlainValidator(optional(_at_most(MAX_CONSTANT_FEE, " ct/kWh")))]
PercentFee = Annotated[float | None, PlainValidator(optional(_at_most(MAX_FEE_PERCENT, " %")))]
Attributes = Annotated[dict[str, Any] | None, PlainValidator(_attributes)]
Requirements = Annotated[list[dict[str, Any]] | None, PlainValidator(_requirements)]

# ---------------------------------------------------------------------------------------------- commands


class CommandParams(BaseModel):
    """The arguments of one command; unknown keys are refused (gsy-e fails on them, REDIS.md 6.5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    command: ClassVar[str]  # the wire name: ``type`` in batches, the channel suffix in direct mode

    def wire(self) -> dict[str, Any]:
        """The command object of ``batch_commands`` (REDIS.md 6.2): ``type`` and every argument."""
        return {"type": self.command, **dict(self)}


class Order(CommandParams):
    """An offer or a bid: ``price`` is the total in cents for ``energy`` kWh, not a rate."""

    energy: Energy
    price: Price
    replace_existing: Flag = True
    time_slot: TimeSlot = None  # null: the spot market (REDIS.md 11.1: never name the spot slot)
    attributes: Attributes = None  # storage and smart meter only; PV and load refuse the key
    requirements: Requirements = None

    @model_validator(mode="after")
    def _finite_rate(self) -> Self:
        if not math.isfinite(self.price / self.energy):
            raise _error("rate", "price / energy must be a finite energy rate")
        return self

    @classmethod
    def spot(cls, energy: float, price: float) -> Self:
        """A replacing order for the current spot market from numbers the caller has checked
        (finite, energy > 0, price >= 0): the fleet's strategies make thousands per event.

        What ``model_construct`` does, for these fields only: a quarter of its cost, and of
        validating. ``tests/unit/test_command_params.py`` holds it equal to a validated order.
        """
        order = cls.__new__(cls)
        _set(order, "__dict__", {**_SPOT_DEFAULTS, "energy": energy, "price": price})
        _set(order, "__pydantic_fields_set__", {"energy", "price"})
        _set(order, "__pydantic_extra__", None)
        _set(order, "__pydantic_private__", None)
        return order

    def wire(self) -> dict[str, Any]:
        # attributes / requirements only when given: PV and load refuse the keys even when null.
        command: dict[str, Any] = {
            "type": self.command,
            "energy": self.energy,
            "price": self.price,
            "replace_existing": self.replace_existing,
            "time_slot": self.time_slot,
        }
        if self.attributes is not None:
            command["attributes"] = self.attributes
        if self.requirements is not None:
            command["requirements"] = self.requirements
        return command


_set = object.__setattr__  # as pydantic sets a frozen model's slots
_SPOT_DEFAULTS: dict[str, Any] = {
    name: field.default for name, field in Order.model_fields.items() if name not in ("energy", "price")
}


class Offer(Order):
    command = "offer"


class Bid(Order):
    command = "bid"


class DeleteOffer(CommandParams):
    """The id travels as ``offer`` (what gsy-e reads) and ``offer_id`` (what the original SDK sent),
    REDIS.md 6.2 MISMATCH; no id deletes all of the asset's open offers."""

    command = "delete_offer"
    offer: OrderId = None
    offer_id: OrderId = None
    time_slot: TimeSlot = None

    @property
    def order_id(self) -> str | None:
        return self.offer if self.offer is not None else self.offer_id


class DeleteBid(CommandParams):
    command = "delete_bid"
    bid: OrderId = None
    bid_id: OrderId = None
    time_slot: TimeSlot = None

    @property
    def order_id(self) -> str | None:
        return self.bid if self.bid is not None else self.bid_id


class ListOffers(CommandParams):
    command = "list_offers"
    time_slot: TimeSlot = None


class ListBids(CommandParams):
    command = "list_bids"
    time_slot: TimeSlot = None


class DeviceInfo(CommandParams):
    command = "device_info"


class SetEnergyForecast(CommandParams):
    """Applied when the next slot starts, to the slots from that one on (REDIS.md 6.5)."""

    command = "set_energy_forecast"
    energy_forecast: EnergySeries


class SetEnergyMeasurement(CommandParams):
    """Applied when the next slot starts, to the slots before it (REDIS.md 6.5)."""

    command = "set_energy_measurement"
    energy_measurement: EnergySeries


class GridFees(CommandParams):
    """Exactly one fee: in a batch under ``data`` (REDIS.md 6.2), in direct mode and over REST
    beside the other keys (REDIS.md 9, REST.md 3.2); both spellings are read."""

    command = "grid_fees"
    fee_const: ConstantFee = None  # ct/kWh
    fee_percent: PercentFee = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap_data(cls, value: Any) -> Any:
        if not isinstance(value, dict) or "data" not in value:
            return value
        data, beside = value["data"], {key: item for key, item in value.items() if key != "data"}
        if not isinstance(data, dict):
            raise _error("grid_fee_data", "data must be a dict {fee_const | fee_percent: number}")
        if set(data) & set(beside):
            raise _error("grid_fee_data", "give the fee in data or beside it, not both")
        return {**beside, **data}

    @model_validator(mode="after")
    def _one_fee(self) -> Self:
        if (self.fee_const is None) == (self.fee_percent is None):
            raise _error("grid_fee", "give exactly one of fee_const (ct/kWh) and fee_percent")
        return self

    def wire(self) -> dict[str, Any]:
        data = {"fee_const": self.fee_const} if self.fee_const is not None else {"fee_percent": self.fee_percent}
        return {"type": self.command, "data": data}


class DsoMarketStats(CommandParams):
    command = "dso_market_stats"
    data: dict[str, Any] = {}  # sent empty by the SDK, read by nobody


# ---------------------------------------------------------------------------------------------- errors

_BUILT_IN_MESSAGES = {  # pydantic's own checks, worded like ours
    "missing": "is required",
    "extra_forbidden": "is not an argument of this command",
    "dict_type": "must be a dict",
}


def describe(exc: ValidationError, names: Mapping[str, str] | None = None, echo: bool = False) -> str:
    """The errors as ``"<field> <rule>"`` sentences joined by ``"; "``.

    ``names`` renames fields (the SDK names its own arguments); ``echo`` appends the refused
    value (shortened), which the SDK shows its user and servers never return.
    """
    sentences = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        field = (names or {}).get(field, field)
        message = _BUILT_IN_MESSAGES.get(error["type"], error["msg"])
        sentence = f"{field} {message}" if field else message
        if echo and error["type"] != "missing":
            sentence += f", got {reprlib.repr(error['input'])}"
        sentences.append(sentence)
    return "; ".join(sentences)
