"""Every area command of the protocol, once: its wire name, what it targets, where it travels.

The SDK's builder and clients, the exchange's handler tables, the direct-mode channels and the
facade's routes are all checked against this table (``tests/unit/test_command_catalogue.py``),
so a command added in one place and forgotten in another fails a test instead of a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Target(StrEnum):
    ASSET = "asset"
    MARKET = "market"


@dataclass(frozen=True)
class CommandSpec:
    name: str  # in batches (``"type"``, REDIS.md 6.2) and on direct channels ``<prefix>/<name>`` (REDIS.md 9)
    target: Target
    rest_path: str  # under ``/external-connection/api/{sim}/{area}/`` (REST.md 3.1, 3.2, 3.6)
    rest_method: str = "POST"
    self_answered: bool = False  # answers on its request channel itself, not ``<prefix>/response/...``


CATALOGUE: tuple[CommandSpec, ...] = (
    CommandSpec("offer", Target.ASSET, "offer/"),
    CommandSpec("bid", Target.ASSET, "bid/"),
    CommandSpec("delete_offer", Target.ASSET, "delete-offer/"),
    CommandSpec("delete_bid", Target.ASSET, "delete-bid/"),
    CommandSpec("list_offers", Target.ASSET, "list-offers", "GET"),
    CommandSpec("list_bids", Target.ASSET, "list-bids", "GET"),
    CommandSpec("device_info", Target.ASSET, "device-stats", "GET"),
    CommandSpec("set_energy_forecast", Target.ASSET, "set-energy-forecast/", self_answered=True),
    CommandSpec("set_energy_measurement", Target.ASSET, "set-energy-measurement/", self_answered=True),
    CommandSpec("grid_fees", Target.MARKET, "grid-fee/"),
    CommandSpec("dso_market_stats", Target.MARKET, "dso-market-stats", "GET"),
)
BY_NAME = {spec.name: spec for spec in CATALOGUE}


def names(target: Target, self_answered: bool | None = None) -> tuple[str, ...]:
    """Wire names of the commands for ``target``, in catalogue order (optionally by how they answer)."""
    return tuple(
        spec.name
        for spec in CATALOGUE
        if spec.target is target and (self_answered is None or spec.self_answered == self_answered)
    )
