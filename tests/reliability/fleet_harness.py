"""A real fleet for the fault tests: exchange, dispatcher and Celery workers as separate processes.

Nothing is mocked: a ``redis-server`` of the test's own (so a fault test can restart it, and tasks
a killed worker leaves behind never reach another test's workers), the local exchange in a
subprocess writing ``orders.csv``, Celery worker subprocesses running the documented command
line, and the dispatcher either in the test process (to watch the tasks it sends) or as
``gsy-e-sdk fleet dispatch`` (so it can be SIGKILLed).

The Celery broker is that Redis or the local RabbitMQ (127.0.0.1:5672), in a vhost and with a
user of the test's own, deleted afterwards: a test takes the ``broker`` fixture to run once per
broker (ids ``redis`` and ``rabbitmq``) and ``broker_url`` for the URL. Without a RabbitMQ the
``rabbitmq`` runs are skipped, except under ``CI=true`` where they fail (``.ci/run`` starts one).

The scenario is ``community.json`` from 10:00 with 30 s ticks (10 events per 15 min slot); every
one of its 25 households places orders in every slot of that morning, so "an asset missed a
slot" is a plain set difference on ``orders.csv``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
import yaml

from gsy_local_exchange.embedded_redis import PrivateRedis
from orchestrator.attach import aggregator_uuid
from orchestrator.fleet_key import fleet_key
from orchestrator.messages import slice_transaction_id
from orchestrator.processes import dispatcher_command, exchange_command, exchange_env, wait_for_exchange, worker_command
from orchestrator.sharding import plan_slices
from tests.processes import Proc

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "gsy_local_exchange" / "scenarios" / "community.json"
START = "2026-06-01T10:00"
SLOTS = ["2026-06-01T10:00", "2026-06-01T10:15", "2026-06-01T10:30", "2026-06-01T10:45", "2026-06-01T11:00"]
HOUSEHOLDS = 25  # 19 loads, 4 PVs, 2 batteries: every one orders in every slot of the morning
# Broker visibility timeout of the fault tests: a SIGKILLed worker's tasks are re-queued this many
# seconds after they were delivered (plus at most the 1 s restore sweep of orchestrator.celery_app).
# It must exceed the longest a healthy worker holds a task: task_timeout below (2 s), and at the
# paces used here the exchange answers a batch at its next tick, well under a second.
VISIBILITY_TIMEOUT_S = 3
TASK_TIMEOUT_S = 2.0
BROKERS = ("redis", "rabbitmq")
RABBITMQ_ADDRESS = ("127.0.0.1", 5672)


@pytest.fixture()
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis of the test's own: it may be restarted, and what a killed process leaves behind
    (queued or unacked tasks) never reaches another test's workers."""
    server = PrivateRedis().start()
    yield server
    server.stop()


def rabbitmq_missing() -> str | None:
    """Why no private vhost can be made on the local RabbitMQ, or None when one can."""
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    try:
        socket.create_connection(RABBITMQ_ADDRESS, timeout=2).close()
    except OSError as exc:
        return f"no RabbitMQ answers on {RABBITMQ_ADDRESS[0]}:{RABBITMQ_ADDRESS[1]} ({exc})"
    return None


def require_rabbitmq() -> None:
    """Skip the test when RabbitMQ is missing; under CI=true fail it (CI must prove both brokers)."""
    reason = rabbitmq_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"RabbitMQ is required under CI=true: {reason}")
    pytest.skip(f"RabbitMQ broker runs need a local RabbitMQ: {reason}")


def rabbitmqctl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "--quiet", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode:
        raise RuntimeError(f"rabbitmqctl {args[0]} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def rabbitmq_list(what: str, *columns: str, vhost: str | None = None) -> list[dict]:
    """``rabbitmqctl list_<what>`` as dicts (e.g. ``rabbitmq_list("queues", "name", "type", vhost=v)``)."""
    scope = ["-p", vhost] if vhost else []
    return json.loads(rabbitmqctl(f"list_{what}", *scope, *columns, "--formatter", "json") or "[]")


@contextlib.contextmanager
def private_rabbitmq_vhost(prefix: str = "gsy-test") -> Iterator[str]:
    """A vhost and a user (random password, given on stdin: never in argv) of the caller's own on
    the local RabbitMQ -> ``amqp://USER:PASSWORD@127.0.0.1:5672/VHOST``; both deleted however
    the caller ends (deleting the vhost drops its queues and closes its connections)."""
    name = f"{prefix}-{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(24)
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("add_user", name, stdin=f"{password}\n")
        try:
            rabbitmqctl("set_permissions", "-p", name, name, ".*", ".*", ".*")
            yield f"amqp://{name}:{password}@{RABBITMQ_ADDRESS[0]}:{RABBITMQ_ADDRESS[1]}/{name}"
        finally:
            rabbitmqctl("delete_user", name)
    finally:
        rabbitmqctl("delete_vhost", name)


@contextlib.contextmanager
def fleet_broker(kind: str, redis_url: str) -> Iterator[str]:
    """The Celery broker URL of a test's fleet: ``redis_url`` itself, or a private RabbitMQ vhost."""
    if kind == "redis":
        yield redis_url
        return
    require_rabbitmq()
    with private_rabbitmq_vhost() as url:
        yield url


@pytest.fixture(scope="module", params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    """Runs the test (or a module-scoped fixture) once per broker kind: ``redis``, ``rabbitmq``."""
    return request.param


@pytest.fixture()
def rabbitmq_vhost() -> Iterator[str]:
    """A private vhost on the local RabbitMQ: ``amqp://USER:PASSWORD@127.0.0.1:5672/VHOST``."""
    require_rabbitmq()
    with private_rabbitmq_vhost() as url:
        yield url


@pytest.fixture()
def broker_url(broker: str, private_redis: PrivateRedis) -> Iterator[str]:
    """The broker of a ``broker``-parametrized test: its private Redis, or a private RabbitMQ vhost."""
    with fleet_broker(broker, private_redis.url) as url:
        yield url


def fleet_dict(name: str, **overrides) -> dict:
    fleet = {
        "name": name,
        "shards": 2,
        "max_assets_per_task": 5,
        "task_timeout": TASK_TIMEOUT_S,
        "aggregators": [
            {"name": "households", "assets": ["Load *", "PV *", "Tesla Powerwall *"]},
            {"name": "operator", "markets": ["Community"]},
        ],
        "strategies": {
            "Load": {"name": "price_ramp", "params": {"initial_buying_rate": 20}},
            "PV": {"name": "price_ramp", "params": {"final_selling_rate": 10}},
            "Storage": {"name": "storage_arbitrage"},
            "Market": {"name": "grid_fee", "params": {"base_fee": 3}},
        },
    }
    fleet.update(overrides)
    return fleet


class FreezableProxy:
    """A TCP proxy in front of Redis whose traffic the test can freeze: connections stay open,
    bytes stop, as when a process is cut off from the network. Used to make a worker hold its
    tasks (blocked on the exchange's Redis) for as long as the test wants before it is killed."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen.is_set() and not self._closed.is_set():
                    time.sleep(0.01)
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


class Fleet:
    """Everything one fault test starts; ``close()`` stops whatever is still running."""

    def __init__(self, tmp: Path, redis_url: str, fleet: dict, broker_url: str | None = None) -> None:
        self.tmp = tmp
        self.redis_url = redis_url
        self.broker_url = broker_url or redis_url
        self.fleet = fleet
        self.name = fleet["name"]
        self.config_path = tmp / "fleet.yaml"
        self.config_path.write_text(yaml.safe_dump(fleet))
        self.results = tmp / "exchange"
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.exchange: Proc | None = None
        self.workers: dict[str, Proc] = {}
        self.dispatchers: list[Proc] = []
        self.env = {
            "GSY_FLEET_CONFIG": str(self.config_path),
            "REDIS_URL": redis_url,
            "GSY_FLEET_BROKER_URL": self.broker_url,
            "GSY_FLEET_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
        }

    # ------------------------------------------------------------------ processes
    def start_exchange(self, duration: str, pace: str | None, *extra: str) -> Proc:
        args = [
            "--strict-reference",
            "--paused",
            "--duration",
            duration,
            "--tick-length",
            "30s",
            "--start-date",
            START,
            "--results",
            str(self.results),
            *extra,
        ]
        if pace is not None:
            args += ["--pace", pace]
        self.exchange = Proc(exchange_command(SCENARIO, *args), self.tmp / "exchange.log", exchange_env(self.redis_url))
        wait_for_exchange(self.client, self.exchange.process)
        return self.exchange

    def start_worker(
        self,
        name: str,
        queues: Iterable[str] = ("shard-0", "shard-1"),
        log_level: str = "INFO",
        env: dict[str, str] | None = None,
    ) -> Proc:
        worker = Proc(
            worker_command(list(queues), name, log_level), self.tmp / f"{name}.log", {**self.env, **(env or {})}
        )
        self.workers[name] = worker
        return worker

    def wait_workers(self, app, names: Iterable[str], timeout: float = 60.0) -> None:
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in wanted:
                assert self.workers[name].alive(), f"worker {name} exited:\n{self.workers[name].output()[-3000:]}"
            replies = app.control.ping(timeout=0.5) or []
            if wanted <= {node.split("@")[0] for reply in replies for node in reply}:
                return
        raise AssertionError(f"workers {sorted(wanted)} not ready after {timeout:g} s")

    def start_dispatcher_process(self, log_level: str = "INFO", extra_env: dict[str, str] | None = None) -> Proc:
        index = len(self.dispatchers)
        argv = dispatcher_command(self.config_path, "--redis-url", self.redis_url, log_level=log_level)
        dispatcher = Proc(argv, self.tmp / f"dispatcher-{index}.log", {**self.env, **(extra_env or {})})
        self.dispatchers.append(dispatcher)
        return dispatcher

    def wait_listening(self, process: Proc | None = None, timeout: float = 60.0) -> None:
        """Until every aggregator's event channel has a subscriber (the dispatcher is attached)."""
        deadline = time.monotonic() + timeout
        channels_: list[str] = []
        while time.monotonic() < deadline:
            if process is not None:
                assert process.alive(), f"dispatcher exited:\n{process.output()[-3000:]}"
            channels_ = [f"external-aggregator//{uuid_}/events/all" for uuid_ in self.aggregator_uuids().values()]
            if channels_ and all(count for _, count in self.client.pubsub_numsub(*channels_)):
                return
            time.sleep(0.05)
        raise AssertionError(f"the dispatcher did not subscribe to {channels_} within {timeout:g} s")

    def resume(self) -> None:
        self.client.publish("/resume", '{"transaction_id": "fault-test"}')

    def wait_exchange(self, timeout: float) -> int:
        assert self.exchange is not None
        try:
            return self.exchange.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"exchange still running after {timeout:g} s:\n{self.exchange.output()[-3000:]}"
            ) from None

    def close(self) -> None:
        for process in [*self.dispatchers, *self.workers.values(), *([self.exchange] if self.exchange else [])]:
            process.stop()
        self.client.close()

    # ------------------------------------------------------------------ what happened
    def key(self) -> bytes:
        return fleet_key(self.client, self.name)

    def aggregator_uuids(self) -> dict[str, str]:
        """As the dispatcher derives them, under the fleet's key (created now if it is the first)."""
        return {
            aggregator["name"]: aggregator_uuid(self.key(), self.name, aggregator["name"])
            for aggregator in self.fleet["aggregators"]
        }

    def orders(self) -> list[dict]:
        with (self.results / "orders.csv").open() as handle:
            return list(csv.DictReader(handle))

    def counters(self) -> dict[str, int]:
        return {key: int(value) for key, value in self.client.hgetall(f"gsy:fleet:{self.name}:counters").items()}


def assets_by_slot(orders: list[dict]) -> dict[str, set[str]]:
    by_slot: dict[str, set[str]] = defaultdict(set)
    for order in orders:
        by_slot[order["slot"]].add(order["asset"])
    return by_slot


def missing_by_slot(orders: list[dict], slots: list[str], assets: set[str]) -> dict[str, set[str]]:
    """Slot -> assets without any order in it (empty dict: every asset ordered in every slot)."""
    by_slot = assets_by_slot(orders)
    return {slot: assets - by_slot.get(slot, set()) for slot in slots if assets - by_slot.get(slot, set())}


def duplicate_orders(orders: list[dict]) -> dict[tuple[str, str, str], int]:
    """(asset, side, transaction_id) placed more than once: one decision held twice by the exchange."""
    counts = Counter((order["asset"], order["side"], order["transaction_id"]) for order in orders)
    return {key: count for key, count in counts.items() if count > 1}


def decision_ids(
    key: bytes, aggregator_uuid_: str, slices: int, slots: list[str]
) -> dict[str, tuple[str, str, int, int]]:
    """Every transaction id a fleet task can submit under -> (slot, event, completion, slice).

    The dispatcher's formula under the fleet's key; an order under any other id was not placed
    by a task of this fleet (e.g. a resubmission that invented a new id).
    """
    ids = {}
    for slot in slots:
        for event in ("market", "tick"):
            for completion in range(0, 100, 10):
                for index in range(slices):
                    ids[slice_transaction_id(key, aggregator_uuid_, slot, event, completion, index)] = (
                        slot,
                        event,
                        completion,
                        index,
                    )
    return ids


def household_slices(fleet: dict) -> int:
    return len(
        plan_slices(
            "households", [str(i) for i in range(HOUSEHOLDS)], [], fleet["shards"], fleet["max_assets_per_task"]
        )
    )


TASK_LINE = re.compile(r"Task (workers\.\w+)\[([0-9a-f-]{36})\] (received|succeeded)")


def task_states(log: str) -> dict[str, set[str]]:
    """Celery task id -> {"received", "succeeded"} as logged by a worker at INFO."""
    states: dict[str, set[str]] = defaultdict(set)
    for _name, task_id, state in TASK_LINE.findall(log):
        states[task_id].add(state)
    return states


RECEIVED_LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/\w+\] Task workers\.\w+\[([0-9a-f-]{36})\] received$",
    re.MULTILINE,
)


def task_receipts(log: str) -> list[tuple[str, float]]:
    """(Celery task id, when the worker took it, epoch seconds) in the order a worker logged them at INFO."""
    return [
        (task_id, datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp())
        for stamp, task_id in RECEIVED_LINE.findall(log)
    ]


def wait_until(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)
