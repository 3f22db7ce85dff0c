"""Checks on user input, run before anything is sent so mistakes surface at the call site."""

import math
from datetime import datetime
from numbers import Real
from typing import Any, cast

from gsy_e_sdk.wire.times import format_slot, parse_slot


def _finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return cast(float, value)  # as given: an int stays an int on the wire


def positive_energy(value: Any, name: str = "energy") -> float:
    """Energy of an order in kWh: a finite number > 0."""
    if _finite_number(name, value) <= 0:
        raise ValueError(f"{name} must be > 0 kWh, got {value!r}")
    return value


def non_negative(value: Any, name: str) -> float:
    """Prices, rates, fees and forecast values: a finite number >= 0."""
    if _finite_number(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def area_uuid(value: Any, name: str = "area uuid") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def optional_id(value: Any, name: str) -> str | None:
    """An order id, or None meaning "all of them"."""
    return None if value is None else area_uuid(value, name)


def time_slot(value: Any) -> str | None:
    """None (the current spot market), a slot string the exchange can parse, or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_slot(value)
    parse_slot(value)
    return value


def energy_per_slot(value: Any, name: str) -> dict[str | None, float]:
    """A forecast or measurement: ``{time slot: kWh}`` with kWh >= 0 (a None slot: the spot market)."""
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{name} must be a non-empty dict {{time_slot: kWh}}, got {value!r}")
    return {time_slot(slot): non_negative(energy, f"{name}[{slot}]") for slot, energy in value.items()}


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value
