"""Fault injection on a real fleet (GitHub issue 8): killed workers, a restarted Redis, a killed
dispatcher, a lost pub/sub event. Real processes and a real ``redis-server`` of each test's own.

Every test checks the exchange's own record (``orders.csv``: slot, asset, side, transaction id):
which household placed orders in which slot, and that no decision was held twice (no
(asset, side, transaction id) twice, and no order under an id no fleet task derives).

The killed-worker and killed-dispatcher tests run once per Celery broker (ids ``redis`` and
``rabbitmq``, ``fleet_harness.broker``); the Redis restart and the lost event test Redis itself.

Timing. Slots are 15 simulated minutes of 30 s ticks (10 events per slot). Where a fault needs
wall time to heal the exchange runs at a fixed pace (``--pace`` wall seconds per slot), else at
fast pace. On Redis the broker's visibility timeout is 3 s (``fleet_harness.VISIBILITY_TIMEOUT_S``),
so a SIGKILLed worker's tasks come back after 3 s plus the 1 s restore sweep; RabbitMQ requeues
them as soon as the worker's connection closes.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gsy_e_sdk.wire import redis_connection
from gsy_e_sdk.wire.redis_connection import RedisConnection, get_connection
from orchestrator.celery_app import make_app
from orchestrator.config import load_fleet_config
from orchestrator.dispatcher import Dispatcher
from orchestrator.messages import SliceTask, slice_payloads
from orchestrator.processes import LocalWorkers
from tests.reliability.fleet_harness import (
    HOUSEHOLDS,
    SCENARIO,
    SLOTS,
    VISIBILITY_TIMEOUT_S,
    Fleet,
    FreezableProxy,
    Proc,
    decision_ids,
    duplicate_orders,
    fleet_dict,
    household_slices,
    missing_by_slot,
    task_receipts,
    task_states,
    wait_until,
)

pytestmark = pytest.mark.integration


class RecordingDispatcher:
    """The in-process dispatcher, with every task it sends recorded as (celery id -> name, slice payloads)."""

    def __init__(self, fleet: Fleet, dispatcher_class: type[Dispatcher] = Dispatcher) -> None:
        self.config = load_fleet_config(fleet.config_path)
        self.connection = get_connection(fleet.redis_url)
        self.app = make_app(fleet.broker_url)
        self.dispatcher = dispatcher_class(self.config, self.connection, self.app)
        self.sent: dict[str, tuple[str, list[dict]]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.dispatcher.run, args=(self.stop,), daemon=True)
        original = self.app.send_task

        def recording(name, args=None, **options):
            result = original(name, args=args, **options)
            with self.lock:
                self.sent[result.id] = (name, slice_payloads(args[0]))
            return result

        self.app.send_task = recording

    def tasks(self) -> dict[str, tuple[str, list[dict]]]:
        with self.lock:
            return dict(self.sent)

    def slices(self) -> list[tuple[str, str, dict]]:
        """(celery id, task name, slice payload) of every slice sent (a task carries several)."""
        return [(task_id, name, payload) for task_id, (name, payloads) in self.tasks().items() for payload in payloads]

    def close(self) -> None:
        """After the exchange finished: the dispatcher has seen ``finish`` (or is stopped)."""
        self.thread.join(timeout=10)
        self.stop.set()
        self.thread.join(timeout=5)
        self.connection.close()
        redis_connection._connections.pop(self.connection.url, None)


def _assert_every_household_orders_once_per_decision(fleet: Fleet, slots: list[str], households: set[str]) -> None:
    orders = fleet.orders()
    assert len(households) == HOUSEHOLDS
    assert missing_by_slot(orders, slots, households) == {}
    assert duplicate_orders(orders) == {}
    known = decision_ids(fleet.key(), fleet.aggregator_uuids()["households"], household_slices(fleet.fleet), slots)
    assert {order["transaction_id"] for order in orders} <= set(known), "an order under an id no task derives"


def test_sigkilled_worker_tasks_are_redelivered_within_the_slot(broker, broker_url, private_redis, tmp_path):
    """Two workers on both shard queues; one is SIGKILLed while it holds tasks of slot 10:15.

    A task runs in a few milliseconds, too fast to kill a worker in the middle of one by timing
    alone. So once every task of 10:00 is done, the victim's connection to the exchange's Redis
    (``REDIS_URL``, through a proxy; its broker connection is direct) is frozen: the tasks it
    takes from 10:15 on block before they submit anything, and it is killed holding them.
    Pace 12 s per slot (an event every 1.2 s). How the survivor gets them depends on the broker:
    Redis re-queues them once the 3 s visibility timeout has passed since the victim took them
    (+ <= 1 s restore sweep); RabbitMQ as soon as the victim's connection closes, ahead of every
    task published later. Either way they still land in 10:15 with seconds to spare.
    """
    fleet = Fleet(tmp_path, private_redis.url, fleet_dict("fault-worker-kill"), broker_url)
    proxy = FreezableProxy(private_redis.port)
    recorder = None
    try:
        fleet.start_exchange("45m", "12")
        victim = fleet.start_worker("victim", env={"REDIS_URL": proxy.url})
        survivor = fleet.start_worker("survivor")
        recorder = RecordingDispatcher(fleet)
        recorder.dispatcher.start(fresh=True)
        fleet.wait_workers(recorder.app, ["victim", "survivor"])
        recorder.thread.start()
        fleet.resume()

        def all_of_10_00_done() -> bool:
            sent = recorder.tasks()
            done = {
                task
                for worker in (victim, survivor)
                for task, states in task_states(worker.output()).items()
                if "succeeded" in states
            }
            return (
                any(payload["slot"] == SLOTS[0] and payload["completion"] == 90 for _, _, payload in recorder.slices())
                and set(sent) <= done
            )

        wait_until(all_of_10_00_done, 60, "every task of slot 10:00 to finish", step=0.05)
        proxy.frozen.set()

        def victim_holds_a_task_of_the_slot() -> bool:
            states = task_states(victim.output())
            return any(
                payload["slot"] == SLOTS[1] and states.get(task_id) == {"received"}
                for task_id, _, payload in recorder.slices()
            )

        wait_until(victim_holds_a_task_of_the_slot, 20, "the victim to take a task of slot 10:15")
        time.sleep(0.3)  # it may take a few more before the kill
        victim.sigkill()
        sent = recorder.slices()
        held = {task_id for task_id, states in task_states(victim.output()).items() if states == {"received"}}
        assert fleet.wait_exchange(60) == 0
    finally:
        fleet.close()
        proxy.close()
        if recorder:
            recorder.close()

    assert held, "the victim held no task when it was killed"
    assert {payload["slot"] for task_id, _, payload in sent if task_id in held} == {SLOTS[1]}
    survivor_states = task_states(survivor.output())
    assert all(survivor_states.get(task_id) == {"received", "succeeded"} for task_id in held), (
        f"not redelivered to the survivor: {[t for t in held if 'succeeded' not in survivor_states.get(t, ())]}"
    )
    taken_by_victim = dict(task_receipts(victim.output()))
    taken_by_survivor = task_receipts(survivor.output())
    if broker == "redis":
        # Not before the visibility timeout: kombu timed the delivery just before the victim logged it.
        waited = {task: at - taken_by_victim[task] for task, at in taken_by_survivor if task in held}
        assert min(waited.values()) >= VISIBILITY_TIMEOUT_S - 0.25, waited
    else:
        # Requeued on the connection's close: ahead of the tasks of the second event after the kill
        # (>= 1.2 s later; the first one may race the kill) and of everything after it.
        killed_at = max(_event_index(payload) for _, _, payload in sent)
        later = {
            task_id
            for task_id, _, payload in recorder.slices()
            if task_id not in {t for t, _, _ in sent} and _event_index(payload) >= killed_at + 2
        }
        order = [task for task, _ in taken_by_survivor]
        assert later and max(order.index(task) for task in held) < min(order.index(task) for task in later)
    households = set(recorder.dispatcher.aggregators[0].assets.values())
    _assert_every_household_orders_once_per_decision(fleet, SLOTS[:3], households)
    # Each redelivered decision with orders was placed, once, within the slot it was made for.
    orders = fleet.orders()
    redelivered_with_orders = 0
    for task_id, _, payload in sent:
        task = SliceTask.model_validate(payload)
        if task_id in held and task.assets:
            placed = {order["slot"] for order in orders if order["transaction_id"] == task.transaction_id}
            assert placed == {task.slot}, (task_id, task.event, task.completion, placed)
            redelivered_with_orders += 1
    assert redelivered_with_orders, "no held task carried assets"


def _event_index(payload: dict) -> int:
    """The position of a slice's event in the run: 10 events per slot (market at 0 %, ticks after),
    the finish event last."""
    if payload["event"] == "finish":
        return len(SLOTS) * 10
    return SLOTS.index(payload["slot"]) * 10 + payload["completion"] // 10


def _community_assets() -> list[str]:
    """Names of the scenario's assets the fleet can control (every node with a type but the bus)."""
    stack, names = [json.loads(SCENARIO.read_text())], []
    while stack:
        node = stack.pop()
        stack.extend(node.get("children") or [])
        if node.get("type") and node["type"] != "InfiniteBus":
            names.append(node["name"])
    return names


class DroppingDispatcher(Dispatcher):
    """Loses the households' market event of slot 10:15 on arrival, as a pub/sub gap would, and
    receives their 50 % tick of 10:30 twice, as from a relay subscribed twice."""

    dropped: list[dict]

    def _queue_handler(self, aggregator):
        self.dropped = getattr(self, "dropped", [])
        handler = super()._queue_handler(aggregator)

        def dropping(payload: dict) -> None:
            if (
                aggregator.name == "households"
                and payload.get("event") == "market"
                and payload.get("market_slot") == SLOTS[1]
            ):
                self.dropped.append(payload)
                return
            handler(payload)
            if (
                aggregator.name == "households"
                and payload.get("event") == "tick"
                and payload.get("market_slot") == SLOTS[2]
                and payload.get("slot_completion") == "50%"
            ):
                handler(payload)

        return dropping


def test_a_lost_market_event_is_detected_and_the_slot_resynced(private_redis, tmp_path):
    """A lost event and a repeated one, at the dispatcher.

    Without resync the households would only see ticks of 10:15: the fleet would never start
    that slot (grid operators act on market events only). The first tick of the slot is sent
    as its market event instead, and the lost event is counted. A tick delivered twice is
    dispatched once (every task would run twice otherwise).

    Pace 4 s per slot, not fast: at fast pace the exchange stops waiting for an aggregator that
    let an event pass unanswered (until it sends again), so it could race through 10:15 before
    the resynced batches arrive, which would test the exchange's pacing, not the resync.
    """
    fleet = Fleet(tmp_path, private_redis.url, fleet_dict("fault-lost-event"))
    recorder = None
    try:
        fleet.start_exchange("1h", "4")
        fleet.start_worker("wa")
        fleet.start_worker("wb")
        recorder = RecordingDispatcher(fleet, DroppingDispatcher)
        recorder.dispatcher.start(fresh=True)
        fleet.wait_workers(recorder.app, ["wa", "wb"])
        recorder.thread.start()
        fleet.resume()
        assert fleet.wait_exchange(90) == 0
    finally:
        if recorder:
            recorder.close()
        counters = fleet.counters()
        fleet.close()

    dispatcher = recorder.dispatcher
    assert [payload["market_slot"] for payload in dispatcher.dropped] == [SLOTS[1]]
    assert counters.get("missed_events") == 1 and counters.get("resynced_slots") == 1, counters
    assert counters.get("duplicate_events") == 1, counters
    doubled = [
        payload
        for _, _, payload in recorder.slices()
        if payload["slot"] == SLOTS[2] and payload["completion"] == 50 and payload["aggregator"] == "households"
    ]
    assert len(doubled) == household_slices(fleet.fleet), "the tick received twice was dispatched twice"
    households_uuid = fleet.aggregator_uuids()["households"]
    resynced = [
        SliceTask.model_validate(payload)
        for _, name, payload in recorder.slices()
        if name == "workers.on_market_slot"
        and payload["slot"] == SLOTS[1]
        and payload["aggregator_uuid"] == households_uuid
    ]
    assert sorted(task.slice for task in resynced) == list(range(household_slices(fleet.fleet)))
    assert {task.completion for task in resynced} == {10}, "the first tick after the loss starts the slot"
    households = set(dispatcher.aggregators[0].assets.values())
    _assert_every_household_orders_once_per_decision(fleet, SLOTS[:4], households)
    # The resynced market decisions reached the exchange, within 10:15.
    placed = {
        order["slot"]
        for order in fleet.orders()
        if order["transaction_id"] in {task.transaction_id for task in resynced}
    }
    assert placed == {SLOTS[1]}


class ExchangeWatch:
    """What the exchange was asked and answered, from its own channels (a plain pub/sub reader)."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.creates: list[dict] = []  # CREATE commands on aggregator-commands
        self.create_answers: list[dict] = []  # their answers on aggregator-response
        self.batch_senders: set[str] = set()  # aggregator uuids of every batch sent
        self.events: list[tuple[str, dict]] = []  # (aggregator uuid, market/tick event)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(
            **{
                "aggregator-commands": self._on_command,
                "aggregator-response": self._on_answer,
                "external-aggregator//batch_commands": self._on_batch,
            }
        )
        self.pubsub.psubscribe(**{"external-aggregator//*/events/all": self._on_event})
        self.thread = self.pubsub.run_in_thread(sleep_time=0.05, daemon=True)

    def _on_command(self, message) -> None:
        payload = json.loads(message["data"])
        if payload.get("type") == "CREATE":
            self.creates.append(payload)

    def _on_answer(self, message) -> None:
        payload = json.loads(message["data"])
        if any(payload.get("transaction_id") == create["transaction_id"] for create in self.creates):
            self.create_answers.append(payload)

    def _on_batch(self, message) -> None:
        self.batch_senders.add(json.loads(message["data"]).get("aggregator_uuid"))

    def _on_event(self, message) -> None:
        payload = json.loads(message["data"])
        if payload.get("event") in ("market", "tick"):
            self.events.append((message["channel"].split("/")[2], payload))

    def saw(self, aggregator: str, slot: str, completion: int) -> bool:
        return any(
            uuid_ == aggregator and payload["market_slot"] == slot and payload["slot_completion"] == f"{completion}%"
            for uuid_, payload in list(self.events)
        )

    def close(self) -> None:
        self.thread.stop()
        self.thread.join(timeout=5)
        self.pubsub.close()
        self.client.close()


def test_a_killed_dispatcher_reattaches_without_duplicates_and_resumes_at_the_current_tick(
    broker_url, private_redis, tmp_path
):
    """``gsy-e-sdk fleet dispatch`` is SIGKILLed at 10 % of slot 10:15 and started again once the
    exchange has published 30 % (so at least the 20 % and 30 % events are lost for sure).

    Pace 12 s per slot (an event every 1.2 s): the new process needs 2-3 s to start and attach,
    so it comes back well within the same slot, as a tick of it. Once per broker: the dispatcher
    process finds it in ``GSY_FLEET_BROKER_URL``, as the workers do.
    """
    fleet = Fleet(tmp_path, private_redis.url, fleet_dict("fault-dispatcher-kill"), broker_url)
    uuids = fleet.aggregator_uuids()
    watch = None
    try:
        fleet.start_exchange("45m", "12")
        watch = ExchangeWatch(private_redis.url)  # after: it listens on aggregator-commands too
        fleet.start_worker("wa", log_level="WARNING")
        fleet.start_worker("wb", log_level="WARNING")
        first = fleet.start_dispatcher_process()
        fleet.wait_listening(first)
        fleet.wait_workers(make_app(fleet.broker_url), ["wa", "wb"])
        fleet.resume()
        wait_until(lambda: watch.saw(uuids["households"], SLOTS[1], 10), 60, "10 % of slot 10:15")
        first.sigkill()
        wait_until(lambda: watch.saw(uuids["households"], SLOTS[1], 30), 10, "30 % of slot 10:15")
        second = fleet.start_dispatcher_process()
        assert fleet.wait_exchange(60) == 0
        wait_until(lambda: not second.alive(), 20, "the restarted dispatcher to finish")
    finally:
        counters = fleet.counters()
        fleet.close()
        if watch:
            watch.close()

    assert second.process.returncode == 0, second.output()[-3000:]
    # Re-attached, not duplicated: both starts asked for the same two uuids; the exchange created
    # each once, refused the second CREATE, and no other aggregator ever sent or got anything.
    assert [create["transaction_id"] for create in watch.creates] == [uuids["households"], uuids["operator"]] * 2
    created = sorted(answer["transaction_id"] for answer in watch.create_answers if answer["status"] == "ready")
    assert created == sorted(uuids.values())
    assert second.output().count("re-attached") == 2
    assert watch.batch_senders == set(uuids.values())
    assert {uuid_ for uuid_, _ in watch.events} == set(uuids.values())
    # Resumed at the current tick: the ticks of 10:15 lost while it was down are counted, the slot
    # was not started over, and the households ordered in 10:15 after the restart and in 10:30.
    assert counters.get("missed_events", 0) >= 2 and counters.get("resynced_slots", 0) == 0, counters
    known = decision_ids(fleet.key(), uuids["households"], household_slices(fleet.fleet), SLOTS[:3])
    ticks = {
        known[order["transaction_id"]][2]
        for order in fleet.orders()
        if known[order["transaction_id"]][:2] == (SLOTS[1], "tick")
    }
    assert not ticks & {20, 30} and max(ticks) == 90, ticks
    households = {order["asset"] for order in fleet.orders()}
    _assert_every_household_orders_once_per_decision(fleet, SLOTS[:3], households)


SDK_ASSET = "Load 7 L22"  # traded by a plain SDK aggregator in its own process, not by the fleet
SDK_CLIENT = """
import sys, threading
from gsy_e_sdk import AutoAggregator
from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.wire.redis_connection import get_connection

finished = threading.Event()

class Client(AutoAggregator):
    def on_market_slot(self, market_info):
        super().on_market_slot(market_info)
        print("slot", market_info.get("market_slot"), flush=True)

    def on_finish(self, finish_info):
        finished.set()

client = Client("sdk-client", redis_url=sys.argv[1], bid_price=30.0, energy_share=1.0)
RedisAssetClient(sys.argv[2], autoregister=True, redis_url=sys.argv[1]).select_aggregator(client.aggregator_uuid)
print("selected", flush=True)
finished.wait(300)
print("finished", get_connection(sys.argv[1]).reconnections, flush=True)  # the process's one connection
"""


def test_fleet_and_sdk_clients_survive_a_redis_restart(private_redis, tmp_path):
    """Redis is stopped at 30 % of slot 10:15 and started again (empty) a second later.

    Everything reconnects on its own: the exchange, the in-process dispatcher, both Celery
    workers (broker and SDK connections) and a plain SDK aggregator in its own process. Pub/sub
    messages and queued tasks of the outage are lost (Redis keeps nothing); from the next slot on
    every asset trades again. Pace 8 s per slot leaves the workers' broker reconnection (Celery
    retries after 2 s, then 4 s, ...) a whole slot.
    """
    fleet_assets = sorted(name for name in _community_assets() if name != SDK_ASSET)
    fleet = Fleet(
        tmp_path,
        private_redis.url,
        fleet_dict(
            "fault-redis-restart",
            aggregators=[
                {"name": "households", "assets": fleet_assets},
                {"name": "operator", "markets": ["Community"]},
            ],
        ),
    )
    recorder = sdk = None
    try:
        fleet.start_exchange("1h15m", "8")
        fleet.start_worker("wa", log_level="WARNING")
        fleet.start_worker("wb", log_level="WARNING")
        script = tmp_path / "sdk_client.py"
        script.write_text(SDK_CLIENT)
        sdk = Proc([sys.executable, str(script), private_redis.url, SDK_ASSET], tmp_path / "sdk-client.log")
        wait_until(lambda: "selected" in sdk.output(), 30, "the SDK client to select its asset")
        recorder = RecordingDispatcher(fleet)
        recorder.dispatcher.start(fresh=True)
        fleet.wait_workers(recorder.app, ["wa", "wb"])
        recorder.thread.start()
        fleet.resume()
        wait_until(
            lambda: any(
                payload["slot"] == SLOTS[1] and payload["completion"] >= 30 for _, _, payload in recorder.slices()
            ),
            60,
            "30 % of slot 10:15",
        )
        private_redis.stop()
        time.sleep(1.0)  # down long enough for every client to notice
        private_redis.restart()  # same port, empty
        assert fleet.wait_exchange(90) == 0
        wait_until(lambda: not sdk.alive(), 20, "the SDK client to see the finish event")
    finally:
        if recorder:
            recorder.close()
        fleet.close()
        if sdk:
            sdk.stop()

    assert recorder.dispatcher.done, "the dispatcher never got the finish event"
    assert recorder.connection.reconnections >= 1
    sdk_reconnections = re.search(r"^finished (\d+)$", sdk.output(), re.MULTILINE)
    assert sdk_reconnections and int(sdk_reconnections.group(1)) >= 1, sdk.output()[-3000:]
    orders = fleet.orders()
    after = SLOTS[2:5]  # the slots that started after the restart
    assert missing_by_slot(orders, after, set(fleet_assets) | {SDK_ASSET}) == {}
    assert duplicate_orders(orders) == {}
    for slot in after:
        assert f"slot {slot}" in sdk.output()


def test_a_dead_local_worker_of_fleet_run_is_started_again(private_redis, tmp_path):
    """``fleet run`` / the demo run their workers through ``LocalWorkers``, where worker i alone
    consumes its shards: one that dies must come back, or its shards stall for the rest of the run."""
    fleet = Fleet(tmp_path, private_redis.url, fleet_dict("fault-local-workers"))
    app = make_app(private_redis.url)
    pool = LocalWorkers(app, 2, 2, fleet.env, log_dir=tmp_path, name_prefix="local")
    try:
        pool.start()
        victim = pool.processes[1]  # the only consumer of shard-1
        victim.send_signal(signal.SIGKILL)
        wait_until(lambda: pool.restarts == 1 and pool.processes[1].pid != victim.pid, 10, "the restart")
        pool.wait_ready(60)
        # The new worker consumes shard-1: a task sent there runs.
        payload = SliceTask(
            fleet="fault-local-workers",
            aggregator="households",
            aggregator_uuid="a",
            slice=1,
            shard=1,
            event="finish",
            dispatched_at=time.time(),
            transaction_id="t",
        ).model_dump()
        app.send_task("workers.on_finish", args=[payload], queue="shard-1")
        wait_until(lambda: fleet.counters().get("finished_slices") == 1, 30, "the task on shard-1")
    finally:
        pool.stop()
        fleet.close()
    assert pool.restarts == 1 and victim.returncode == -signal.SIGKILL


def test_a_subscription_that_failed_while_redis_was_down_works_once_it_is_back(private_redis):
    """An SDK connection asked to subscribe while Redis is away raises; asked again once Redis is
    back, the channel must really be subscribed (not skipped as "already subscribed")."""
    connection = RedisConnection(private_redis.url)
    # One quick retry instead of ~30 s of them, so the failing call returns at once; nothing else
    # about the connection changes (the pub/sub connection is made from its pool's settings).
    connection.pubsub.connection_pool.connection_kwargs["retry"] = Retry(NoBackoff(), 1)
    received: list[dict] = []
    try:
        connection.subscribe({"before": lambda _channel, payload: None})
        private_redis.stop()
        with pytest.raises(redis.ConnectionError):
            connection.subscribe({"during": lambda _channel, payload: received.append(payload)})
        private_redis.restart()
        wait_until(lambda: connection.reconnections >= 1, 20, "the reader to reconnect")
        connection.subscribe({"during": lambda _channel, payload: received.append(payload)})
        client = redis.Redis.from_url(private_redis.url)
        client.publish("during", '{"n": 1}')
        client.close()
        wait_until(lambda: received == [{"n": 1}], 5, "the message on the re-subscribed channel")
    finally:
        connection.close()
