"""One fleet served by two ``gsy-e-sdk fleet dispatch`` processes, each owning part of its aggregators.

Real processes throughout (``fleet_harness.Fleet``): a private ``redis-server`` (also the Celery
broker), the local exchange writing ``orders.csv``, two Celery workers, and the two dispatchers,
given their part by environment (``GSY_FLEET_DISPATCHER_INDEX`` / ``_COUNT``). Three slots of the
community at fast pace. The households are split over two aggregators so that each dispatcher
serves assets: sorted by name, part 0 owns ``h-loads`` and ``operator`` (the market), part 1
``h-producers``.
"""

from __future__ import annotations

import re

import pytest
import redis

from orchestrator.celery_app import make_app
from orchestrator.sharding import aggregators_for_dispatcher
from orchestrator.state import StateStore
from tests.reliability.fleet_harness import (
    HOUSEHOLDS,
    SLOTS,
    Fleet,
    decision_ids,
    duplicate_orders,
    fleet_dict,
    missing_by_slot,
    wait_until,
)

pytestmark = pytest.mark.integration

PARTS = 2
AGGREGATORS = [
    {"name": "h-loads", "assets": ["Load *"]},
    {"name": "h-producers", "assets": ["PV *", "Tesla Powerwall *"]},
    {"name": "operator", "markets": ["Community"]},
]
OWNED = {0: {"h-loads", "operator"}, 1: {"h-producers"}}
ATTACHED = re.compile(r"aggregator (\S+) \([0-9a-f-]{36}\) (?:created|re-attached)")


def test_two_dispatchers_share_a_fleet_and_every_asset_orders_in_every_slot(private_redis, tmp_path):
    fleet = Fleet(tmp_path, private_redis.url, fleet_dict("dispatcher-parts", aggregators=AGGREGATORS))
    names = [aggregator["name"] for aggregator in AGGREGATORS]
    assert {index: set(aggregators_for_dispatcher(names, index, PARTS)) for index in range(PARTS)} == OWNED
    try:
        fleet.start_exchange("45m", None)  # 10:00, 10:15, 10:30 at fast pace
        fleet.start_worker("wa", ["shard-0"], log_level="WARNING")
        fleet.start_worker("wb", ["shard-1"], log_level="WARNING")
        parts = [
            fleet.start_dispatcher_process(
                extra_env={"GSY_FLEET_DISPATCHER_INDEX": str(index), "GSY_FLEET_DISPATCHER_COUNT": str(PARTS)}
            )
            for index in range(PARTS)
        ]
        for part in parts:  # the start line comes once the part's devices are selected
            wait_until(lambda part=part: "dispatching" in part.output() or not part.alive(), 60, "a part's start")
            assert part.alive(), part.output()[-3000:]
        fleet.wait_listening()
        fleet.wait_workers(make_app(fleet.broker_url), ["wa", "wb"])
        fleet.resume()
        assert fleet.wait_exchange(60) == 0
        wait_until(lambda: not any(part.alive() for part in parts), 20, "both dispatchers to finish")
        client = redis.Redis.from_url(private_redis.url)
        store = StateStore(client, fleet.name)
        placements, slices = store.meta("placements"), store.meta("slices")
        client.close()
        uuids, key = fleet.aggregator_uuids(), fleet.key()
    finally:
        fleet.close()

    logs = [part.output() for part in parts]
    for index, log in enumerate(logs):
        assert parts[index].process.returncode == 0, log[-3000:]
        # Each part attached its own aggregators and no other; only part 0 watches the workers.
        assert set(ATTACHED.findall(log)) == OWNED[index], log[-3000:]
        assert f"part {index} of {PARTS}: {', '.join(sorted(OWNED[index]))}" in log
        assert ("failover on" in log) == (index == 0), log[-3000:]

    # The merged placements hold every device of both parts, each under its own aggregator.
    assets = {name for name, placement in placements.items() if not placement["market"]}
    assert len(assets) == HOUSEHOLDS
    assert {name for name, placement in placements.items() if placement["market"]} == {"community"}
    assert {placement["aggregator"] for placement in placements.values()} == set(names)
    assert set(slices) == set(names)

    # The exchange's record: every household ordered in every slot, no decision twice, and each
    # order under an id of the aggregator that owns the asset.
    orders = fleet.orders()
    assert missing_by_slot(orders, SLOTS[:3], assets) == {}
    assert duplicate_orders(orders) == {}
    by_aggregator = {
        name: decision_ids(key, uuids[name], len(slices[name]), SLOTS[:3]) for name in ("h-loads", "h-producers")
    }
    wrong = [
        order
        for order in orders
        if order["transaction_id"] not in by_aggregator[placements[order["asset"]]["aggregator"]]
    ]
    assert wrong == []
