"""Generated scenarios for large fleets (benchmarks, load tests).

``generate_scenario(assets, markets, seed)`` returns a scenario document (the same dict a JSON
scenario file decodes to) with a ``Grid`` root, an ``InfiniteBus`` market maker and ``markets``
external child markets holding ``assets`` external assets. Everything is a pure function of the
arguments: names, parameters and uuids (uuid5 of the seed and the name) are reproducible.

Command line: ``python -m exchange.generate --assets 10000 --markets 100 -o fleet.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from typing import Any

__all__ = ["generate_scenario"]

# Asset kind by 1-based asset number modulo 5: 40 % loads, 40 % PVs, 20 % storages, interleaved
# so that every market gets a mix (load-000001, pv-000002, load-000003, pv-000004, storage-000005).
_KIND_BY_REMAINDER = {1: "load", 2: "pv", 3: "load", 4: "pv", 0: "storage"}
_STORAGE_SIZES = (5.0, 10.0, 13.5, 20.0)
_STORAGE_POWERS = (2.5, 3.3, 5.0)


def _hours(rng: random.Random) -> list[int]:
    """A contiguous window of operating hours (possibly wrapping past midnight, or all day)."""
    length = rng.choice((4, 6, 8, 12, 16, 24))
    if length == 24:
        return list(range(24))
    start = rng.randrange(24)
    return sorted((start + offset) % 24 for offset in range(length))


def _load(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "LoadHours",
        "avg_power_W": rng.randrange(50, 1501, 10),
        "hrs_of_day": _hours(rng),
        "initial_buying_rate": rng.randrange(0, 11),
        "final_buying_rate": rng.randrange(25, 36),
    }


def _pv(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "PV",
        "panel_count": rng.randint(2, 25),
        "capacity_kW": 0.4,
        "initial_selling_rate": rng.randrange(25, 31),
        "final_selling_rate": rng.randrange(5, 16),
    }


def _storage(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "Storage",
        "battery_capacity_kWh": rng.choice(_STORAGE_SIZES),
        "max_abs_battery_power_kW": rng.choice(_STORAGE_POWERS),
        "initial_soc": rng.randrange(10, 91),
        "min_allowed_soc": 10,
        "initial_buying_rate": 0,
        "final_buying_rate": 24.9,
        "initial_selling_rate": 30,
        "final_selling_rate": 25,
    }


_BUILDERS = {"load": _load, "pv": _pv, "storage": _storage}


def generate_scenario(assets: int, markets: int, seed: int = 0) -> dict[str, Any]:
    """A valid scenario document with ``assets`` external assets spread over ``markets`` markets.

    Markets ``Market 0001`` ... get contiguous blocks of assets whose sizes differ by at most one.
    ``ValueError`` unless ``assets >= 1`` and ``1 <= markets <= assets``.
    """
    for label, value in (("assets", assets), ("markets", markets), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{label} must be an integer, got {value!r}")
    if assets < 1:
        raise ValueError(f"assets must be at least 1, got {assets}")
    if not 1 <= markets <= assets:
        raise ValueError(f"markets must be between 1 and the number of assets ({assets}), got {markets}")

    rng = random.Random(seed)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:gsy-local-exchange:generated:{seed}")

    def uid(name: str) -> str:
        return str(uuid.uuid5(namespace, name))

    asset_width = max(6, len(str(assets)))
    market_width = max(4, len(str(markets)))
    per_market, extra = divmod(assets, markets)
    children: list[dict[str, Any]] = []
    number = 0
    for market_index in range(markets):
        market_name = f"Market {market_index + 1:0{market_width}d}"
        members = []
        for _ in range(per_market + (1 if market_index < extra else 0)):
            number += 1
            kind = _KIND_BY_REMAINDER[number % 5]
            name = f"{kind}-{number:0{asset_width}d}"
            node = {"name": name, "uuid": uid(name), **_BUILDERS[kind](rng), "allow_external_connection": True}
            members.append(node)
        children.append(
            {
                "name": market_name,
                "uuid": uid(market_name),
                "grid_fee_constant": 1,
                "allow_external_connection": True,
                "children": members,
            }
        )
    children.append(
        {
            "name": "Market Maker",
            "uuid": uid("Market Maker"),
            "type": "InfiniteBus",
            "energy_sell_rate": 30,
            "energy_buy_rate": 5,
        }
    )
    return {
        "name": "Grid",
        "uuid": uid("Grid"),
        "settings": {"market_maker_rate": 30, "feed_in_tariff": 5},
        "grid_fee_constant": 0.5,
        "allow_external_connection": True,
        "children": children,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a generated fleet scenario as JSON.")
    parser.add_argument("--assets", type=int, required=True)
    parser.add_argument("--markets", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        document = generate_scenario(args.assets, args.markets, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    text = json.dumps(document, indent=1) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
