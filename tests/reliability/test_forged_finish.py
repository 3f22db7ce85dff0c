"""A forged ``{"event": "finish"}`` on the fleet's aggregator channels must not end its run.

Pub/sub cannot tell who published a message; the dispatcher tells the exchange's own finish from
a forged one by what follows it (``orchestrator.finish``). Real exchange, dispatcher process and
Celery workers; the forger is a plain redis-py client.
"""

from __future__ import annotations

import json
import time

import pytest

from orchestrator.celery_app import make_app
from tests.reliability.fleet_harness import (
    HOUSEHOLDS,
    SLOTS,
    Fleet,
    fleet_dict,
    missing_by_slot,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_a_forged_finish_does_not_end_the_fleet_run(private_redis, tmp_path):
    fleet = Fleet(tmp_path, private_redis.url, fleet_dict("forged-finish"))
    uuids = fleet.aggregator_uuids()
    try:
        fleet.start_exchange("30m", "4")
        fleet.start_worker("wa", log_level="WARNING")
        dispatcher = fleet.start_dispatcher_process()
        fleet.wait_listening(dispatcher)
        fleet.wait_workers(make_app(private_redis.url), ["wa"])
        fleet.resume()
        wait_until(lambda: fleet.counters().get("tasks_done", 0) > 0, 30, "the first tasks")
        for uuid_ in uuids.values():
            fleet.client.publish(
                f"external-aggregator//{uuid_}/events/all",
                json.dumps({"event": "finish", "simulation_id": None, "num_ticks": 10.0}),
            )
        time.sleep(2.5)
        assert dispatcher.alive(), f"a forged finish ended the run:\n{dispatcher.output()[-3000:]}"
        assert fleet.wait_exchange(60) == 0
        wait_until(lambda: not dispatcher.alive(), 30, "the dispatcher to end after the real finish")
        counters = fleet.counters()
    finally:
        fleet.close()
    assert counters.get("forged_finish_events", 0) >= 1, counters
    orders = fleet.orders()
    households = {order["asset"] for order in orders}
    assert len(households) == HOUSEHOLDS and missing_by_slot(orders, SLOTS[:2], households) == {}
