"""Fleet latency, throughput and cost at 100 / 1,000 / 10,000 assets, against a one-process baseline.

For each N: a generated scenario of N assets in N/100 markets, one aggregator per market, the
local exchange at fast pace (it waits for every aggregator's batch at each event tick, up to a
deadline). The exchange itself times each event from its publication to the last batch it
receives for it, separately for market and tick events. Every process (exchange, dispatcher,
each worker; the baseline) is measured for CPU seconds, peak RSS, threads and sockets, and
the exchange's Redis for the commands it served per slot. The Celery broker is a server of the
run's own, Redis (``--broker redis``, default) or a vhost on the local RabbitMQ (``--broker
rabbitmq``, 127.0.0.1:5672, deleted after the run); per slot it reports the messages published to
the broker (Redis: LPUSH/RPUSH/PUBLISH calls; RabbitMQ: the node's ``messages_received_total``),
the bytes of the fleet processes' broker connections (both directions, the kernel's own count,
``ss``) and the broker's CPU. Then the same strategies run in one process
(``benchmarks/baseline.py``) and the ratio fleet/baseline is reported; at the largest N the fleet
also runs with 1, 2 and 4 workers. Prints a table and writes ``benchmarks/results/fleet-<broker>.json``.

    python benchmarks/fleet.py                      # 100, 1,000, 10,000 (+ scaling at 10,000)
    python benchmarks/fleet.py --quick              # stops at 1,000
    python benchmarks/fleet.py --broker rabbitmq --assets 1000 10000 --no-baseline --scaling 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
import yaml

from gsy_e_sdk.wire import channels
from gsy_local_exchange.embedded_redis import PrivateRedis
from gsy_local_exchange.generate import generate_scenario
from orchestrator.processes import (
    dispatcher_command,
    exchange_command,
    stop_processes,
    wait_for_exchange,
    worker_command,
)
from orchestrator.sharding import queue_name, shards_for_worker

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
SHARDS = 4
IDLE_SECONDS = 5.0
BROKERS = ("redis", "rabbitmq")

sys.path.insert(0, str(ROOT))  # tests/ is not installed: the RabbitMQ helpers of the fleet tests
from tests.reliability.fleet_harness import private_rabbitmq_vhost, rabbitmq_list, rabbitmqctl  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# ---------------------------------------------------------------------------------------------- probes
@dataclass
class Probe:
    """One process's CPU, peak RSS, threads and sockets, read from /proc while it runs."""

    name: str
    process: subprocess.Popen
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    max_threads: int = 0
    max_sockets: int = 0

    def sample(self) -> None:
        pid = self.process.pid
        try:
            self.cpu_s = cpu_seconds(pid)
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
            )
            self.peak_rss_mb = max(self.peak_rss_mb, int(status["VmHWM"].split()[0]) / 1024)
            self.max_threads = max(self.max_threads, int(status["Threads"]))
            sockets = sum(
                1 for fd in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            )
            self.max_sockets = max(self.max_sockets, sockets)
        except (OSError, KeyError, IndexError, ValueError):
            pass  # the process is gone: keep the last reading

    def wait(self, timeout: float) -> None:
        """Wait for exit; the child's own rusage then gives its exact CPU time and peak RSS."""
        deadline = time.monotonic() + timeout
        while self.process.returncode is None:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_s = usage.ru_utime + usage.ru_stime
                self.peak_rss_mb = max(self.peak_rss_mb, usage.ru_maxrss / 1024)
                return
            self.sample()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout:g} s")
            time.sleep(0.1)

    def stop(self) -> None:
        self.sample()
        stop_processes([self.process], timeout=20)

    def row(self) -> dict[str, Any]:
        return {
            "cpu_s": round(self.cpu_s, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "threads": self.max_threads,
            "sockets": self.max_sockets,
        }


SS_SOCKET = re.compile(r"^\S+\s+\d+\s+\d+\s+(\S+)\s+\S+\s+users:\(\(\"[^\"]*\",pid=(\d+),")
SS_BYTES = re.compile(r"\bbytes_(sent|received):(\d+)")


class BrokerBytes:
    """Bytes the fleet's processes exchanged with the broker: every sample reads each of their TCP
    connections to the broker's port from the kernel (``ss -tinp``) and keeps its highest count,
    so a connection closed since (the dispatcher's, at its exit) still counts what it carried."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()  # the sampler thread and the run's before/after readings

    def sample(self, pids: set[int]) -> int:
        listing = subprocess.run(
            ["ss", "-tinpH", f"dport = :{self.port}"], capture_output=True, text=True, check=False
        ).stdout
        with self._lock:
            key = None
            for line in listing.splitlines():
                if match := SS_SOCKET.match(line):
                    key = (int(match[2]), match[1]) if int(match[2]) in pids else None
                elif key is not None:
                    carried = sum(int(count) for _, count in SS_BYTES.findall(line))
                    self.seen[key] = max(self.seen.get(key, 0), carried)
                    key = None
            return sum(self.seen.values())


class Sampler(threading.Thread):
    def __init__(self, probes: list[Probe], broker_bytes: BrokerBytes | None = None, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.probes = probes
        self.broker_bytes = broker_bytes
        self.every = every
        self.stopped = threading.Event()

    def sample_broker(self) -> int:
        if self.broker_bytes is None:
            return 0
        return self.broker_bytes.sample({probe.process.pid for probe in list(self.probes)})

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            for probe in list(self.probes):
                probe.sample()
            self.sample_broker()


def redis_calls(client: redis.Redis) -> int:
    return sum(int(stats["calls"]) for name, stats in client.info("commandstats").items())


# ---------------------------------------------------------------------------------------------- brokers
@dataclass
class BrokerCounts:
    messages: int  # published to the broker: tasks, task events, worker heartbeats, control
    cpu_s: float  # the broker process's CPU seconds


class Broker(Protocol):
    kind: str
    url: str
    port: int
    shared: bool  # whether what the broker counts may include traffic of others

    def counts(self) -> BrokerCounts: ...


class RedisBroker:
    """The Celery broker in a Redis of its own (not the exchange's): what it counts is the broker's."""

    kind = "redis"
    shared = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = urlsplit(url).port or 6379
        self.client = redis.Redis.from_url(url)

    def counts(self) -> BrokerCounts:
        commands = self.client.info("commandstats")
        cpu = self.client.info("cpu")
        return BrokerCounts(
            sum(int(commands.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("lpush", "rpush", "publish")),
            float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        )


class RabbitBroker:
    """A vhost of the run's own on the local RabbitMQ. Its messages (``rabbit_global_counters``) and
    CPU (the node's beam process) are the node's: ``shared`` is set when another vhost had
    connections at a reading, so they may include others' traffic."""

    kind = "rabbitmq"

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = urlsplit(url).port or 5672
        self.vhost = urlsplit(url).path.lstrip("/")
        self.pid = int(rabbitmqctl("eval", "os:getpid().").strip().strip('"'))
        self.shared = False

    def counts(self) -> BrokerCounts:
        self.shared |= any(c["vhost"] != self.vhost for c in rabbitmq_list("connections", "vhost"))
        overview = rabbitmqctl("eval", "maps:get([{protocol,amqp091}], rabbit_global_counters:overview()).")
        received = re.search(r"messages_received_total => (\d+)", overview)
        if received is None:
            raise RuntimeError(f"no messages_received_total in RabbitMQ's counters: {overview[:300]}")
        return BrokerCounts(int(received[1]), cpu_seconds(self.pid))


@contextlib.contextmanager
def open_broker(kind: str) -> Iterator[Broker]:
    """A broker for one fleet run, gone after it (its queues and connections with it)."""
    if kind == "redis":
        server = PrivateRedis().start()
        try:
            yield RedisBroker(server.url)
        finally:
            server.stop()
    else:
        with private_rabbitmq_vhost("gsy-bench") as url:
            yield RabbitBroker(url)


# ---------------------------------------------------------------------------------------------- set-up
def fleet_config(scenario: dict, name: str) -> dict:
    aggregators = [
        {"name": market["name"], "assets": [child["name"] for child in market["children"]]}
        for market in scenario["children"]
        if "children" in market
    ]
    return {
        "name": name,
        "shards": SHARDS,
        "max_assets_per_task": 100,
        "aggregators": aggregators,
        "strategies": {kind: {"name": "price_ramp"} for kind in ("PV", "Load")}
        | {"Storage": {"name": "storage_arbitrage"}},
    }


@dataclass
class Run:
    assets: int
    mode: str  # "fleet" or "baseline"
    workers: int
    work: Path
    url: str
    duration: str
    probes: list[Probe] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return f"{self.mode}-{self.assets}-{self.workers}w"


def _spawn(run: Run, name: str, command: list[str], env: dict[str, str] | None = None) -> Probe:
    log = open(run.work / f"{run.tag}-{name}.log", "w")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=ROOT
    )
    probe = Probe(name, process)
    run.probes.append(probe)
    return probe


def _wait_line(run: Run, name: str, text: str, process: subprocess.Popen, timeout: float) -> None:
    path = run.work / f"{run.tag}-{name}.log"
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not get ready:\n{path.read_text()[-3000:]}")
        time.sleep(0.1)


def _idle_cpu_percent(probes: list[Probe]) -> float:
    for probe in probes:
        probe.sample()
    before = sum(probe.cpu_s for probe in probes)
    time.sleep(IDLE_SECONDS)
    for probe in probes:
        probe.sample()
    return round(100 * (sum(probe.cpu_s for probe in probes) - before) / IDLE_SECONDS, 2)


def run_one(
    assets: int, mode: str, workers: int, url: str, work: Path, duration: str, broker: Broker | None = None
) -> dict[str, Any]:
    """One run; ``broker`` (a fleet's) defaults to the exchange's Redis."""
    run = Run(assets, mode, workers, work, url, duration)
    broker_url = broker.url if broker else url
    scenario = generate_scenario(assets, max(assets // 100, 1))
    scenario_path = work / f"scenario-{assets}.json"
    scenario_path.write_text(json.dumps(scenario))
    config_path = work / f"{run.tag}.yaml"
    config_path.write_text(yaml.safe_dump(fleet_config(scenario, run.tag)))
    results = work / f"{run.tag}-exchange"
    client = redis.Redis.from_url(url)
    client.flushall()
    exchange = _spawn(
        run,
        "exchange",
        exchange_command(
            scenario_path,
            "--paused",
            "--duration",
            duration,
            "--start-date",
            "2026-06-01T08:00",
            "--results",
            str(results),
        ),
        {"REDIS_URL": url},
    )
    wait_for_exchange(client, exchange.process, timeout=120)
    env = {
        "GSY_FLEET_CONFIG": str(config_path),
        "REDIS_URL": url,
        "GSY_FLEET_BROKER_URL": broker_url,
        "GSY_FLEET_WORKER_LOG_LEVEL": "WARNING",
    }
    sampler = Sampler(run.probes, BrokerBytes(broker.port) if broker else None)
    sampler.start()
    helpers: list[Probe] = []
    attach_started = time.monotonic()
    if mode == "fleet":
        dispatcher = _spawn(
            run,
            "dispatcher",
            dispatcher_command(config_path, "--redis-url", url),
            env,
        )
        _wait_line(run, "dispatcher", "dispatching", dispatcher.process, 600)
        helpers.append(dispatcher)
        for index in range(workers):
            queues = [queue_name(shard) for shard in shards_for_worker(index, workers, SHARDS)]
            helpers.append(_spawn(run, f"worker{index}", worker_command(queues, f"{run.tag}-w{index}"), env))
        _wait_workers(broker_url, [f"{run.tag}-w{index}" for index in range(workers)], helpers)
    else:
        baseline = _spawn(
            run,
            "baseline",
            [
                sys.executable,
                str(ROOT / "benchmarks" / "baseline.py"),
                "--config",
                str(config_path),
                "--redis-url",
                url,
            ],
        )
        _wait_line(run, "baseline", "baseline ready", baseline.process, 600)
        helpers.append(baseline)
    attach_s = time.monotonic() - attach_started
    idle = _idle_cpu_percent(helpers)
    ready_rss = {probe.name: probe.peak_rss_mb for probe in helpers}  # attached and idle, before any event
    for probe in run.probes:
        probe.sample()
    ready_cpu = {probe.name: probe.cpu_s for probe in run.probes}  # start-up and attaching, not the run
    calls_before = redis_calls(client)
    broker_before = broker.counts() if broker else None
    bytes_before = sampler.sample_broker()
    started = time.monotonic()
    client.publish(channels.simulation_control("resume"), json.dumps({"transaction_id": "bench"}))
    try:
        exchange.wait(timeout=7200)
        wall = time.monotonic() - started
        helpers[0].wait(timeout=120)  # the dispatcher (or baseline) returns after every aggregator's finish
        calls = redis_calls(client) - calls_before
        broker_bytes = sampler.sample_broker() - bytes_before
        broker_after = broker.counts() if broker else None
    finally:
        sampler.stopped.set()
        for probe in run.probes:
            probe.stop()
    summary = json.loads((results / "summary.json").read_text())
    latency = summary.get("event_to_last_batch") or {}
    by_event = latency.get("by_event", {})
    workers_probes = [p for p in run.probes if p.name.startswith("worker")]
    slots = max(summary["slots"], 1)
    return {
        "assets": assets,
        "aggregators": max(assets // 100, 1),
        "mode": mode,
        "broker": broker.kind if broker else None,
        "workers": workers if mode == "fleet" else 0,
        "slots": summary["slots"],
        "attach_s": round(attach_s, 1),
        "wall_s": round(wall, 1),
        "market_p50_ms": by_event.get("market", {}).get("p50_ms"),
        "market_p99_ms": by_event.get("market", {}).get("p99_ms"),
        "tick_p50_ms": by_event.get("tick", {}).get("p50_ms"),
        "tick_p99_ms": by_event.get("tick", {}).get("p99_ms"),
        "all_p99_ms": latency.get("p99_ms"),
        "max_ms": latency.get("max_ms"),
        "events": latency.get("events"),
        "fully_answered": latency.get("fully_answered"),
        "market_series_ms": latency.get("series_ms", {}).get("market"),
        "orders": summary["client_orders"],
        "trades": summary["trades"],
        "redis_calls_per_slot": round(calls / slots),
        **(
            _broker_row(broker, broker_before, broker_after, broker_bytes, slots, _tasks_sent(run))
            if broker and broker_before and broker_after
            else {}
        ),
        "idle_cpu_percent": idle,
        "cpu_s_per_slot": round(sum(p.cpu_s - ready_cpu[p.name] for p in run.probes) / slots, 3),
        "processes": {
            probe.name: {
                **probe.row(),
                "run_cpu_s": round(probe.cpu_s - ready_cpu[probe.name], 2),
                **({"ready_rss_mb": round(ready_rss[probe.name], 1)} if probe.name in ready_rss else {}),
            }
            for probe in run.probes
        },
        "worker_peak_rss_mb": round(sum(p.peak_rss_mb for p in workers_probes), 1) if workers_probes else None,
    }


def _tasks_sent(run: Run) -> int | None:
    """Task messages the dispatcher sent, from its last line (``finished: N tasks over M slots``)."""
    found = re.search(r"finished: (\d+) tasks", (run.work / f"{run.tag}-dispatcher.log").read_text())
    return int(found[1]) if found else None


def _broker_row(
    broker: Broker, before: BrokerCounts, after: BrokerCounts, carried: int, slots: int, tasks: int | None
) -> dict[str, Any]:
    return {
        "tasks_per_slot": round(tasks / slots) if tasks is not None else None,
        "broker_msgs_per_slot": round((after.messages - before.messages) / slots),
        "broker_kb_per_slot": round(carried / 1024 / slots),
        "broker_cpu_s_per_slot": round((after.cpu_s - before.cpu_s) / slots, 3),
        "broker_counts_shared": broker.shared,
    }


def _wait_workers(url: str, names: list[str], probes: list[Probe], timeout: float = 120) -> None:
    from orchestrator.celery_app import make_app  # noqa: PLC0415 - only the fleet needs Celery here

    app = make_app(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(probe.process.poll() is not None for probe in probes):
            raise RuntimeError("a fleet process exited while starting")
        answered = {name.split("@")[0] for reply in app.control.ping(timeout=0.5) or [] for name in reply}
        if set(names) <= answered:
            return
    raise RuntimeError("workers did not start")


# ---------------------------------------------------------------------------------------------- report
COLUMNS = [
    ("assets", "N", 6),
    ("mode", "mode", 8),
    ("broker", "broker", 8),
    ("workers", "W", 2),
    ("market_p50_ms", "mkt p50", 8),
    ("market_p99_ms", "mkt p99", 8),
    ("tick_p50_ms", "tick p50", 8),
    ("tick_p99_ms", "tick p99", 8),
    ("max_ms", "max", 8),
    ("cpu_s_per_slot", "CPU s/slot", 10),
    ("idle_cpu_percent", "idle %", 7),
    ("redis_calls_per_slot", "redis/slot", 10),
    ("broker_msgs_per_slot", "brk msg/slot", 12),
    ("broker_kb_per_slot", "brk KB/slot", 11),
    ("broker_cpu_s_per_slot", "brk CPU s/slot", 14),
    ("worker_peak_rss_mb", "wrk RSS MB", 10),
    ("wall_s", "wall s", 7),
    ("trades", "trades", 7),
]


def table(rows: list[dict[str, Any]]) -> str:
    lines = [" ".join(f"{title:>{width}}" for _, title, width in COLUMNS)]
    for row in rows:
        lines.append(
            " ".join(f"{row.get(key) if row.get(key) is not None else '-'!s:>{width}}" for key, _, width in COLUMNS)
        )
    return "\n".join(lines)


def derived(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios and targets of the issue: fleet/baseline, memory per asset, CPU per asset-slot."""
    fleet = {(r["assets"], r["workers"]): r for r in rows if r["mode"] == "fleet"}
    base = {r["assets"]: r for r in rows if r["mode"] == "baseline"}
    out: dict[str, Any] = {"fleet_over_baseline_p99": {}, "cpu_ms_per_asset_slot": {}, "per_worker": {}}
    for (assets, workers), row in sorted(fleet.items()):
        if workers == 2 and assets in base and base[assets]["all_p99_ms"]:
            out["fleet_over_baseline_p99"][assets] = round(row["all_p99_ms"] / base[assets]["all_p99_ms"], 2)
        out["cpu_ms_per_asset_slot"][f"{assets}/{workers}w"] = round(1000 * row["cpu_s_per_slot"] / assets, 3)
        workers_rows = [p for name, p in row["processes"].items() if name.startswith("worker")]
        out["per_worker"][f"{assets}/{workers}w"] = {
            "threads": max(p["threads"] for p in workers_rows),
            "sockets": max(p["sockets"] for p in workers_rows),
            "ready_rss_mb": max(p.get("ready_rss_mb", 0) for p in workers_rows),
            "peak_rss_mb": max(p["peak_rss_mb"] for p in workers_rows),
            # What handling events adds to an idle worker, per asset it handles: decoded task
            # messages in flight, bounded by its threads times the dispatcher's message size.
            "events_bytes_per_asset": round(
                sum(p["peak_rss_mb"] - p.get("ready_rss_mb", 0) for p in workers_rows) * 1024 * 1024 / assets
            ),
        }
    two = sorted((assets, row) for (assets, workers), row in fleet.items() if workers == 2)
    if len(two) >= 2:
        (small_n, small), (big_n, big) = two[0], two[-1]
        grown = (big["worker_peak_rss_mb"] - small["worker_peak_rss_mb"]) * 1024 * 1024
        out["worker_bytes_per_asset"] = round(grown / (big_n - small_n))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--duration", default="2h", help="simulated time per run (8 slots)")
    parser.add_argument("--scaling", type=int, nargs="*", default=[1, 2, 4], help="worker counts at the largest N")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--quick", action="store_true", help="stop at 1,000 assets")
    parser.add_argument(
        "--broker", choices=BROKERS, default="redis", help="the fleet's Celery broker, a server of each run's own"
    )
    parser.add_argument("--json", type=Path, help="default: benchmarks/results/fleet-<broker>.json")
    args = parser.parse_args()
    json_path = args.json or RESULTS / f"fleet-{args.broker}.json"
    sizes = [n for n in args.assets if not args.quick or n <= 1000]
    plan = []
    for assets in sizes:
        counts = args.scaling if assets == max(sizes) and not args.quick else [2]
        plan += [(assets, "fleet", workers) for workers in sorted(set(counts) | {2})]
        if not args.no_baseline:
            plan.append((assets, "baseline", 0))
    rows = []
    server = PrivateRedis().start()  # the exchange's, private: its command counts are the benchmark's alone
    try:
        with tempfile.TemporaryDirectory(prefix="gsy-bench-") as tmp:
            for index, (assets, mode, workers) in enumerate(plan, 1):
                print(
                    f"[{index}/{len(plan)}] {mode} with {assets:,} assets"
                    + (f", {workers} workers" if mode == "fleet" else "")
                    + " ...",
                    flush=True,
                )
                with open_broker(args.broker) if mode == "fleet" else contextlib.nullcontext() as broker:
                    rows.append(run_one(assets, mode, workers, server.url, Path(tmp), args.duration, broker))
                print(table(rows[-1:]).splitlines()[1], flush=True)
    finally:
        server.stop()
    report = {
        "rows": rows,
        "derived": derived(rows),
        "duration": args.duration,
        "broker": args.broker,
        "shards": SHARDS,
        "cpus": os.cpu_count(),
    }
    print()
    print(table(rows))
    print(json.dumps(report["derived"], indent=1))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2))
    print(f"written {json_path}")


if __name__ == "__main__":
    main()
