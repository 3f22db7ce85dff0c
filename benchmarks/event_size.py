"""How big one aggregator's event is, by fleet size and aggregator size, and what decoding it costs.

Every ``market``/``tick`` event of the reference exchange carries the whole grid tree (REDIS.md
7.3): the aggregator's own assets in full, every other asset as ``{"area_name": ...}``. So an
event grows with the grid, not with the aggregator, and a tick's events together grow with
aggregators x assets (tree ``full``). The local exchange sends ``compact`` trees above 2,000
assets (the aggregator's own devices and the markets above them). Both are measured: the
figures the capacity model in docs/scaling.md is built on. Runs the local exchange in-process (no Redis)
on generated scenarios until the first event with market statistics, then times the
dispatcher's decoding of one event as it does it (``json_codec.loads``, ``parse_event``,
``index_tree``), in CPU time.

    python benchmarks/event_size.py --cases 1000:100 10000:100 10000:1000 10000:10000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from exchange_tick import build_simulation  # this folder's script (run as python benchmarks/...)

from gsy_e_sdk.wire import json_codec
from gsy_e_sdk.wire.events import parse_event
from gsy_e_sdk.wire.grid_tree import index_tree

EVENTS = "/events/all"
COLUMNS = [  # (row key, title, width)
    ("tree", "tree", 8),
    ("assets", "assets", 8),
    ("assets_per_aggregator", "per agg", 8),
    ("aggregators", "aggs", 5),
    ("event_kB", "event kB", 9),
    ("burst_MB", "burst MB", 9),
    ("decode_ms", "decode ms", 10),
    ("decode_ns_per_byte", "ns/B", 6),
]


def one_event(assets: int, per_aggregator: int, compact: bool) -> tuple[int, list[str]]:
    """(aggregators, the events of the first tick that carries market statistics)."""
    simulation = build_simulation(assets, per_aggregator, 2, with_aggregators=True, compact=compact)
    while not simulation.finished:
        events = [payload for channel, payload in simulation.step().messages if channel.endswith(EVENTS)]
        if events and "last_market_stats" in events[0]:
            return len(simulation.registry.aggregators), events
    raise RuntimeError("no event with market statistics within two slots")


def measure(assets: int, per_aggregator: int, compact: bool, repeat: int = 20) -> dict:
    aggregators, events = one_event(assets, per_aggregator, compact)
    payload = events[0]
    started = time.process_time()
    for _ in range(repeat):
        index_tree(parse_event(json_codec.loads(payload)).grid_tree)
    decode_s = (time.process_time() - started) / repeat
    return {
        "tree": "compact" if compact else "full",
        "assets": assets,
        "assets_per_aggregator": per_aggregator,
        "aggregators": aggregators,
        "event_kB": round(len(payload) / 1e3, 1),
        "burst_MB": round(len(payload) * aggregators / 1e6, 2),
        "decode_ms": round(1e3 * decode_s, 2),
        "decode_ns_per_byte": round(1e9 * decode_s / len(payload), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["1000:100", "10000:100", "10000:1000", "10000:10000"],
        help="ASSETS:PER_AGGREGATOR",
    )
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "event_size.json")
    args = parser.parse_args()
    rows = []
    print(" ".join(f"{title:>{width}}" for _, title, width in COLUMNS))
    for compact in (False, True):
        for case in args.cases:
            assets, per_aggregator = (int(part) for part in case.split(":"))
            row = measure(assets, per_aggregator, compact)
            rows.append(row)
            print(" ".join(f"{row[key]:>{width}}" for key, _, width in COLUMNS), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
