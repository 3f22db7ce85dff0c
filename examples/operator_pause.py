"""Pause one asset of a running fleet, show what the exchange answered, then resume it.

Start a fleet (for example ``gsy-e-sdk demo`` in another shell, which uses Redis on
127.0.0.1:6379 when one answers there), then:

    python examples/operator_pause.py --asset "Load 1 L13" --seconds 5

Each command travels as a Celery task to the shard that owns the asset, so it is handled in
order with that shard's market events. Exit code 2 for an unknown asset.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from orchestrator.operator import OperatorError
from orchestrator.operator_cli import build_operator

DEMO_FLEET = Path(__file__).resolve().parents[1] / "orchestrator" / "fleets" / "community.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEMO_FLEET, help="the running fleet's file")
    parser.add_argument("--redis-url", help="the fleet's Redis; default: env REDIS_URL, else the fleet file's")
    parser.add_argument("--asset", default="Load 1 L13")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the asset stays paused")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    operator = build_operator(args.config, args.redis_url)
    try:
        paused = operator.pause(args.asset)
    except OperatorError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    print(f"pause {args.asset}: task {paused.task_ids[0]}")
    print(json.dumps(operator.wait(paused, args.timeout), indent=2))
    time.sleep(args.seconds)
    resumed = operator.pause(args.asset, resume=True)
    print(f"resume {args.asset}: task {resumed.task_ids[0]}")
    print(json.dumps(operator.wait(resumed, args.timeout), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
