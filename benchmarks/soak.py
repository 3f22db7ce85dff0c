"""Soak: one simulated day of 1,000 assets while a worker is SIGKILLed and restarted every 30 s.

A generated scenario (``gsy_local_exchange.generate``: 1,000 assets in 10 markets, one aggregator per
market, slices of 100 assets on 2 shards), the local exchange in a subprocess at a fixed pace,
the dispatcher in this process and 2 Celery worker processes that both consume both shard
queues, so either can take over the other's work. Every ``--kill-every`` wall seconds one worker
(alternately) is SIGKILLed and at once started again under the same name; its unacked tasks
come back after the broker's visibility timeout.

Measured from the exchange's own record (``orders.csv``):

- asset-slots missed: (asset, slot) where a dispatched event showed the asset with energy to
  trade (so ``price_ramp`` orders at every event) but the exchange holds no order of it in that
  slot. Target 0.
- duplicate orders: the same (asset, side, transaction id) placed more than once, i.e. one
  decision held twice. Target 0. Also orders under an id no dispatched task derives.
- faults injected, missed/resynced events, tasks sent, wall time.

Pace: 3 s of wall time per 15 min slot, so the 96 slots of a day take about 5 minutes while the
fleet (10 tasks of 100 assets per event, 10 events per slot, on a 2-core machine shared by the
exchange, Redis, the dispatcher and both workers) keeps up with room to spare, and the one worker
left while the other restarts (3-5 s) carries the whole load. 30 s ticks (30 per slot, one event
every 3 ticks) keep the exchange's own per-tick cost at 1,000 assets well inside the 0.1 s tick.
The visibility timeout is 3 s: a killed worker's tasks are back about a slot later at this pace,
too late for their own event (orders are pinned to their slot and the exchange refuses a past
one, which is why a late redelivery can never misplace anything), but the asset's next event in
the slot, taken by the surviving worker, covers it; the figure that matters is asset-slots missed.

    python benchmarks/soak.py                        # 1 day, 1,000 assets, kill every 30 s
    python benchmarks/soak.py --duration 2h --kill-every 10   # a quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import yaml

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.redis_connection import get_connection
from gsy_local_exchange.embedded_redis import PrivateRedis
from gsy_local_exchange.generate import generate_scenario
from orchestrator.celery_app import make_app
from orchestrator.config import load_fleet_config
from orchestrator.dispatcher import Dispatcher
from orchestrator.messages import SliceTask, slice_payloads
from orchestrator.processes import exchange_command, exchange_env, stop_processes, wait_for_exchange, worker_command
from workers.strategies.base import AssetView
from workers.strategies.orders import BID, OFFER, energy_limit
from workers.strategies.params import MIN_ORDER_ENERGY

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
QUEUES = ["shard-0", "shard-1"]
KILL_AFTER_DISPATCH_S = 0.01


def fleet_config(scenario: dict, name: str) -> dict:
    aggregators = [
        {"name": market["name"], "assets": [child["name"] for child in market["children"]]}
        for market in scenario["children"]
        if "children" in market
    ]
    return {
        "name": name,
        "shards": len(QUEUES),
        "max_assets_per_task": 100,
        "aggregators": aggregators,
        # price_ramp orders at every event whenever an asset has energy to trade, so "should
        # have ordered in this slot" is known from the events alone.
        "strategies": {kind: {"name": "price_ramp"} for kind in ("PV", "Load", "Storage")},
    }


class Recorder:
    """Wraps the dispatcher's ``send_task``: which assets had energy to trade in which slot, and
    every transaction id a task can submit under."""

    def __init__(self, app) -> None:
        self.expected: set[tuple[str, str]] = set()
        self.transaction_ids: set[str] = set()
        self.lock = threading.Lock()
        self.burst = threading.Event()  # set when the dispatcher sends a task
        original = app.send_task

        def recording(name, args=None, **options):
            result = original(name, args=args, **options)
            self.burst.set()
            for payload in slice_payloads(args[0]):
                if payload["event"] not in ("market", "tick"):
                    continue
                task = SliceTask.model_validate(payload)
                active = [
                    (asset.name, task.slot)
                    for asset in task.assets
                    if any(
                        energy_limit(AssetView(asset.uuid, asset.name, asset.kind, asset.info), side)
                        >= MIN_ORDER_ENERGY
                        for side in (OFFER, BID)
                    )
                ]
                with self.lock:
                    self.expected.update(active)
                    self.transaction_ids.add(task.transaction_id)
            return result

        app.send_task = recording


class Workers:
    """Two worker processes on both shard queues; ``kill_and_restart`` SIGKILLs one, starts it again."""

    def __init__(self, env: dict[str, str], work: Path, count: int) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.work = work
        self.names = [f"soak{index}" for index in range(count)]
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}  # current incarnation's log per worker name
        self.killed_logs: list[Path] = []
        self.kills: list[dict[str, Any]] = []
        for name in self.names:
            self._start(name)

    def _start(self, name: str) -> None:
        # One log per incarnation, at INFO: "received" / "succeeded" per task id tell which tasks
        # a killed worker held and who ran them afterwards.
        self.logs[name] = self.work / f"{name}-{sum(1 for kill in self.kills if kill['worker'] == name)}.log"
        with open(self.logs[name], "w") as log:
            self.processes[name] = subprocess.Popen(
                worker_command(QUEUES, name, "INFO"), env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def kill_and_restart(self, slot: str | None) -> None:
        name = self.names[len(self.kills) % len(self.names)]
        process = self.processes[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.kills.append({"worker": name, "pid": process.pid, "slot": slot, "at": time.time()})
        self.killed_logs.append(self.logs[name])
        self._start(name)

    def redeliveries(self) -> tuple[int, int]:
        """(tasks the killed workers held, of those how many a worker then finished).

        A held task never succeeded in the log of the incarnation that was killed holding it, so
        a success in any log is another worker's (or a later incarnation's) run of it.
        """
        held: set[str] = set()
        finished: set[str] = set()
        for path in self.work.glob("soak*-*.log"):
            states = task_states(path.read_text(errors="replace"))
            finished |= {task for task, seen in states.items() if "succeeded" in seen}
            if path in self.killed_logs:
                held |= {task for task, seen in states.items() if "succeeded" not in seen}
        return len(held), len(held & finished)

    def wait_ready(self, app, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answered = {node.split("@")[0] for reply in app.control.ping(timeout=0.5) or [] for node in reply}
            if set(self.names) <= answered:
                return
            if any(process.poll() is not None for process in self.processes.values()):
                raise RuntimeError("a worker exited while starting")
        raise RuntimeError("workers did not start")

    def stop(self) -> None:
        stop_processes(self.processes.values(), timeout=20)


TASK_LINE = re.compile(r"Task workers\.\w+\[([0-9a-f-]{36})\] (received|succeeded)")


def task_states(log: str) -> dict[str, set[str]]:
    states: dict[str, set[str]] = {}
    for task, state in TASK_LINE.findall(log):
        states.setdefault(task, set()).add(state)
    return states


def read_orders(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def soak(args: argparse.Namespace, url: str, work: Path) -> dict[str, Any]:
    markets = max(args.assets // 100, 1)
    scenario = generate_scenario(args.assets, markets)
    scenario_path = work / "scenario.json"
    scenario_path.write_text(json.dumps(scenario))
    config_path = work / "fleet.yaml"
    config_path.write_text(yaml.safe_dump(fleet_config(scenario, "soak")))
    results = work / "exchange"
    client = redis.Redis.from_url(url)
    exchange_log = open(work / "exchange.log", "w")
    exchange = subprocess.Popen(
        exchange_command(
            scenario_path,
            "--paused",
            "--duration",
            args.duration,
            "--tick-length",
            args.tick_length,
            "--pace",
            str(args.pace),
            "--start-date",
            "2026-06-01",
            "--results",
            str(results),
        ),
        stdout=exchange_log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=exchange_env(url),
    )
    wait_for_exchange(client, exchange, timeout=120)
    env = {
        "GSY_FLEET_CONFIG": str(config_path),
        "REDIS_URL": url,
        "GSY_FLEET_BROKER_URL": url,
        "GSY_FLEET_VISIBILITY_TIMEOUT": str(args.visibility_timeout),
    }
    os.environ["GSY_FLEET_VISIBILITY_TIMEOUT"] = str(args.visibility_timeout)
    config = load_fleet_config(config_path)
    app = make_app(url)
    progress = {"slots": 0, "slot": None}
    total_slots = None

    def on_slot(slot: str) -> None:
        progress["slots"] += 1
        progress["slot"] = slot

    dispatcher = Dispatcher(config, get_connection(url), app, on_slot=on_slot)
    dispatcher.start(fresh=True)
    recorder = Recorder(app)
    workers = Workers(env, work, args.workers)
    stop = threading.Event()
    try:
        workers.wait_ready(app)
        runner = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
        runner.start()
        started = time.monotonic()
        client.publish(channels.simulation_control("resume"), json.dumps({"transaction_id": "soak"}))
        next_kill = started + args.kill_every
        next_report = started
        tty, reported = sys.stdout.isatty(), 0
        total_slots = round(_hours(args.duration) * 4)
        while exchange.poll() is None:
            now = time.monotonic()
            if args.kill_every > 0 and now >= next_kill:
                # Right after the next event's tasks went out (at most one event, 0.3 s, late): a
                # worker is most likely holding some then, which is the fault worth injecting.
                recorder.burst.clear()
                recorder.burst.wait(2.0)
                time.sleep(KILL_AFTER_DISPATCH_S)
                workers.kill_and_restart(progress["slot"])
                next_kill += args.kill_every
            if (tty and now >= next_report) or (not tty and progress["slots"] >= reported + 8):
                reported = progress["slots"]
                line = (
                    f"  slot {progress['slots']:>3}/{total_slots} {progress['slot'] or '':<17} "
                    f"faults {len(workers.kills):>3}  tasks {dispatcher.tasks_sent:>6}  {now - started:6.0f} s"
                )
                print("\r" + line if tty else line, end="" if tty else "\n", flush=True)
                next_report = now + 1.0
            time.sleep(0.1)
        wall = time.monotonic() - started
        if tty:
            print()
        runner.join(timeout=60)
        time.sleep(2)  # the last tasks' counters
    finally:
        stop.set()
        workers.stop()
        if exchange.poll() is None:
            exchange.kill()
        exchange_log.close()
    orders = read_orders(results / "orders.csv")
    summary = json.loads((results / "summary.json").read_text())
    placed = {(order["asset"], order["slot"]) for order in orders}
    missed = sorted(recorder.expected - placed, key=lambda item: (item[1], item[0]))
    per_decision = Counter((order["asset"], order["side"], order["transaction_id"]) for order in orders)
    duplicates = sum(count - 1 for count in per_decision.values() if count > 1)
    foreign = sum(1 for order in orders if order["transaction_id"] not in recorder.transaction_ids)
    counters = dispatcher.store.counters()
    held, redelivered = workers.redeliveries()
    missed_slots = Counter(slot for _, slot in missed)
    return {
        "assets": args.assets,
        "aggregators": markets,
        "workers": args.workers,
        "duration": args.duration,
        "slots": summary["slots"],
        "pace_s_per_slot": args.pace,
        "tick_length": args.tick_length,
        "visibility_timeout_s": args.visibility_timeout,
        "kill_every_s": args.kill_every,
        "faults_injected": len(workers.kills),
        "tasks_held_by_killed_workers": held,
        "tasks_redelivered_and_finished": redelivered,
        "asset_slots_expected": len(recorder.expected),
        "asset_slots_missed": len(missed),
        "missed_by_slot": dict(sorted(missed_slots.items())),
        "missed_examples": [list(item) for item in missed[:20]],
        "orders": len(orders),
        "duplicate_orders": duplicates,
        "orders_under_unknown_ids": foreign,
        "trades": summary["trades"],
        "exchange_exit_code": exchange.returncode,
        "tasks_sent": dispatcher.tasks_sent,
        "tasks_done": counters.get("tasks_done", 0),
        "missed_events": counters.get("missed_events", 0),
        "resynced_slots": counters.get("resynced_slots", 0),
        "wall_s": round(wall, 1),
        "kills": [{**kill, "at": round(kill["at"], 1)} for kill in workers.kills],
    }


def _hours(duration: str) -> float:
    units = {"d": 24.0, "h": 1.0, "m": 1 / 60}
    return float(duration[:-1]) * units[duration[-1]]


ROWS = [
    ("assets", "assets"),
    ("workers", "workers"),
    ("slots", "slots (simulated)"),
    ("pace_s_per_slot", "pace (wall s / slot)"),
    ("visibility_timeout_s", "visibility timeout (s)"),
    ("faults_injected", "faults injected (worker SIGKILL + restart)"),
    ("tasks_held_by_killed_workers", "tasks held by a worker when killed"),
    ("tasks_redelivered_and_finished", "... redelivered and finished elsewhere"),
    ("asset_slots_expected", "asset-slots with energy to trade"),
    ("asset_slots_missed", "asset-slots missed"),
    ("orders", "orders placed"),
    ("duplicate_orders", "duplicate orders"),
    ("orders_under_unknown_ids", "orders under unknown ids"),
    ("trades", "trades"),
    ("missed_events", "events missed by the dispatcher"),
    ("tasks_sent", "tasks sent"),
    ("exchange_exit_code", "exchange exit code"),
    ("wall_s", "wall time (s)"),
]


def table(row: dict[str, Any]) -> str:
    return "\n".join(f"{title:<44} {row[key]:>10}" for key, title in ROWS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", default="1d", help="simulated time, e.g. 1d, 2h")
    parser.add_argument("--pace", type=float, default=3.0, help="wall seconds per 15 min slot")
    parser.add_argument("--tick-length", default="30s")
    parser.add_argument("--kill-every", type=float, default=30.0, help="wall seconds between worker kills (0: none)")
    parser.add_argument("--visibility-timeout", type=int, default=3)
    parser.add_argument("--json", type=Path, default=RESULTS / "soak.json")
    parser.add_argument("--work", type=Path, default=None, help="keep logs and the exchange's results here")
    args = parser.parse_args()
    print(
        f"soak: {args.assets:,} assets, {args.workers} workers, {args.duration} at {args.pace:g} s/slot, "
        f"a worker SIGKILLed and restarted every {args.kill_every:g} s",
        flush=True,
    )
    server = PrivateRedis().start()  # private: nothing else consumes the shard queues
    try:
        if args.work:
            args.work.mkdir(parents=True, exist_ok=True)
            row = soak(args, server.url, args.work)
        else:
            with tempfile.TemporaryDirectory(prefix="gsy-soak-") as tmp:
                row = soak(args, server.url, Path(tmp))
    finally:
        server.stop()
    print(table(row))
    if row["asset_slots_missed"]:
        print(f"missed by slot: {row['missed_by_slot']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(row, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
