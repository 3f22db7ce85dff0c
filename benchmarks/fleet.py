"""Fleet latency on generated scenarios: event published -> last batch received by the exchange.

For each N: a generated scenario of N assets in N/100 markets, one aggregator per market, the
local exchange at fast pace, the dispatcher and W Celery worker processes. The exchange times
every event from publication to the last batch it receives for it; workers time each task
from event receipt to the exchange's answer. Prints a table and writes JSON.

    python benchmarks/fleet.py --assets 100 1000 --workers 2 --duration 2h
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml

from exchange.generate import generate_scenario
from gsy_e_sdk.embedded_redis import redis_url
from gsy_e_sdk.redis_connection import get_connection
from gsy_e_sdk.wire import channels
from orchestrator.celery_app import make_app
from orchestrator.config import load_fleet_config
from orchestrator.dispatcher import Dispatcher
from orchestrator.processes import LocalWorkers, exchange_command, wait_for_exchange
from orchestrator.report import percentile

RESULTS = Path(__file__).parent / "results"


def fleet_config(scenario: dict, name: str) -> dict:
    aggregators = [{"name": market["name"], "assets": [child["name"] for child in market["children"]]}
                   for market in scenario["children"] if "children" in market]
    return {"name": name, "shards": 2, "max_assets_per_task": 100, "aggregators": aggregators,
            "strategies": {kind: {"name": "price_ramp"} for kind in ("PV", "Load")}
            | {"Storage": {"name": "storage_arbitrage"}}}


def run_one(assets: int, workers: int, duration: str, url: str, work: Path) -> dict:
    scenario = generate_scenario(assets, max(assets // 100, 1))
    scenario_path = work / f"scenario-{assets}.json"
    scenario_path.write_text(json.dumps(scenario))
    config_path = work / f"fleet-{assets}.yaml"
    config_path.write_text(yaml.safe_dump(fleet_config(scenario, f"bench-{assets}")))
    results = work / f"exchange-{assets}"
    log = open(work / f"exchange-{assets}.log", "w")
    exchange = subprocess.Popen(exchange_command(scenario_path, url, "--paused", "--duration", duration,
                                                 "--start-date", "2026-06-01T08:00", "--results", str(results)),
                                stdout=log, stderr=subprocess.STDOUT)
    connection = get_connection(url)
    wait_for_exchange(connection.redis, exchange)
    config = load_fleet_config(config_path)
    app = make_app(url)
    dispatcher = Dispatcher(config, connection, app)
    attach_started = time.monotonic()
    dispatcher.start(fresh=True)
    attach_seconds = time.monotonic() - attach_started
    dispatcher.store.reset()
    app.control.purge()
    env = {"GSY_FLEET_CONFIG": str(config_path), "REDIS_URL": url, "GSY_FLEET_BROKER_URL": url}
    pool = LocalWorkers(app, workers, config.shards, env, log_dir=work, name_prefix=f"bench{assets}w").start()
    try:
        started = time.monotonic()
        connection.publish(channels.simulation_control("resume"), {"transaction_id": "bench"})
        thread = threading.Thread(target=dispatcher.run, daemon=True)
        thread.start()
        exchange.wait(timeout=3600)
        wall = time.monotonic() - started
        thread.join(timeout=30)
    finally:
        pool.stop()
        log.close()
    summary = json.loads((results / "summary.json").read_text())
    task_latency = [value for values in dispatcher.store.latencies().values() for value in values]
    counters = dispatcher.store.counters()
    event = summary["event_to_last_batch"] or {}
    return {"assets": assets, "aggregators": len(config.aggregators), "workers": workers, "duration": duration,
            "attach_s": round(attach_seconds, 2), "wall_s": round(wall, 1), "events": event.get("events"),
            "event_to_last_batch_p50_ms": event.get("p50_ms"), "event_to_last_batch_p99_ms": event.get("p99_ms"),
            "event_to_last_batch_max_ms": event.get("max_ms"),
            "task_p50_ms": round(1000 * percentile(task_latency, 0.5), 1) if task_latency else None,
            "task_p99_ms": round(1000 * percentile(task_latency, 0.99), 1) if task_latency else None,
            "commands_submitted": counters.get("commands_submitted", 0),
            "commands_rejected": counters.get("commands_rejected", 0), "trades": summary["trades"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", default="2h")
    parser.add_argument("--quick", action="store_true", help="stop at 1,000 assets")
    parser.add_argument("--json", type=Path, default=RESULTS / "fleet.json")
    args = parser.parse_args()
    sizes = [n for n in args.assets if not args.quick or n <= 1000]
    rows = []
    with redis_url(None) as url, tempfile.TemporaryDirectory(prefix="gsy-bench-") as tmp:
        for assets in sizes:
            row = run_one(assets, args.workers, args.duration, url, Path(tmp))
            rows.append(row)
            print(f"{row['assets']:>6} assets {row['aggregators']:>4} aggs {row['workers']} workers | "
                  f"event->last batch p50 {row['event_to_last_batch_p50_ms']} ms p99 {row['event_to_last_batch_p99_ms']} ms "
                  f"max {row['event_to_last_batch_max_ms']} ms | task p50 {row['task_p50_ms']} ms p99 {row['task_p99_ms']} ms | "
                  f"{row['events']} events, wall {row['wall_s']} s, attach {row['attach_s']} s, "
                  f"{row['commands_submitted']} commands ({row['commands_rejected']} rejected), {row['trades']} trades",
                  flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
