"""Checks on user input, run before anything is sent so mistakes surface at the call site.

The rules are the protocol's (``gsy_e_sdk/wire/command_params.py``, which the exchange applies
too); here they speak of the caller's own argument names and show the refused value.
"""

import reprlib
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic_core import PydanticCustomError

from gsy_e_sdk.wire import command_params

Checked = TypeVar("Checked")


def _check(check: Callable[[Any], Checked], value: Any, name: str) -> Checked:
    try:
        return check(value)
    except PydanticCustomError as exc:
        raise ValueError(f"{name} {exc.message()}, got {reprlib.repr(value)}") from None


def positive_energy(value: Any, name: str = "energy") -> float:
    """Energy of an order in kWh: a finite number > 0."""
    return _check(command_params.positive_energy, value, name)


def non_negative(value: Any, name: str) -> float:
    """Prices, rates, fees and forecast values: a finite number >= 0."""
    return _check(command_params.non_negative, value, name)


def energy_per_slot(value: Any, name: str) -> dict[str, float]:
    """A forecast or measurement: ``{time slot: kWh}`` with kWh >= 0."""
    return _check(command_params.energy_series, value, name)


def area_uuid(value: Any, name: str = "area uuid") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value
