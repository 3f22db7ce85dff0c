"""A worker's slice decision: one failing strategy skips only its asset; states are typed in
between reading and writing them, and an unreadable stored state starts afresh."""

import dataclasses
import logging
import time
from dataclasses import dataclass, field

from orchestrator.config import parse_fleet_config
from orchestrator.messages import AssetItem, SliceTask, slice_transaction_id
from orchestrator.worker_context import WorkerContext
from workers.strategies import get_strategy
from workers.strategies.base import Decision
from workers.strategies.storage import StorageState
from workers.tasks import decide_slice, load_state, slot_closed


@dataclass
class _Store:
    states: dict = field(default_factory=dict)
    controls: dict = field(default_factory=dict)

    def load(self, uuids):
        return (
            {uuid: self.states[uuid] for uuid in uuids if uuid in self.states},
            {uuid: self.controls[uuid] for uuid in uuids if uuid in self.controls},
        )


class _Context:
    """Strategy lookup and state of a worker, without Redis (the logic under test is pure)."""

    def __init__(self, broken: str):
        self.store = _Store()
        self.broken = broken
        ramp = get_strategy("price_ramp")
        self.ramp = (ramp, ramp.params_model())

    def strategy(self, name, kind, overrides=None):
        if name != self.broken:
            return self.ramp

        def broken(*_):
            raise ZeroDivisionError("bad parameters")

        return dataclasses.replace(self.ramp[0], name="broken", decide=broken), None


def _task(assets):
    return SliceTask(
        fleet="f",
        aggregator="a",
        aggregator_uuid="u",
        slice=0,
        shard=0,
        event="market",
        slot="2026-06-01T10:00",
        completion=0,
        market_maker_rate=30,
        dispatched_at=time.time(),
        transaction_id="t-1",
        assets=assets,
    )


def test_a_raising_strategy_skips_only_its_asset(caplog):
    assets = [
        AssetItem(
            uuid=f"id-{i}",
            name=f"load-{i}",
            kind="Load",
            info={"energy_requirement_kWh": 0.5, "energy_active_in_bids": 0.0, "energy_traded": 0.0, "total_cost": 0.0},
        )
        for i in range(3)
    ]
    batch, states, skipped = decide_slice(_task(assets), _Context(broken="load-1"))
    assert skipped == 1 and set(batch) == {"id-0", "id-2"}
    # Spot orders go out with "time_slot": null (REDIS.md 11.1: a string crashes the reference exchange).
    assert all(cmd["type"] == "bid" and cmd["time_slot"] is None for cmds in batch.values() for cmd in cmds)
    assert "load-1" in caplog.text and "ZeroDivisionError" in caplog.text
    assert set(states) == {"id-0", "id-2"}


def test_only_tasks_of_a_slot_before_the_current_one_are_stale():
    task = _task([])
    assert slot_closed(task, "2026-06-01T10:15")
    assert not slot_closed(task, "2026-06-01T10:00") and not slot_closed(task, None)
    assert not slot_closed(task.model_copy(update={"event": "finish"}), "2026-06-01T10:15")
    assert not slot_closed(task.model_copy(update={"slot": "2026-06-02T00:00"}), "2026-06-01T23:45")


def test_transaction_ids_are_stable_per_decision_and_keyed():
    ids = {slice_transaction_id(b"k" * 32, "agg", "2026-06-01T10:00", "tick", completion, 0) for completion in (10, 10)}
    later = slice_transaction_id(b"k" * 32, "agg", "2026-06-01T10:00", "tick", 20, 0)
    other_key = slice_transaction_id(b"j" * 32, "agg", "2026-06-01T10:00", "tick", 10, 0)
    assert len(ids) == 1 and later not in ids and other_key not in ids


def _storage(uuid: str = "ess", used: float = 5.0) -> AssetItem:
    info = {
        "energy_to_sell": 1.0,
        "energy_active_in_offers": 0.0,
        "energy_to_buy": 1.0,
        "energy_active_in_bids": 0.0,
        "used_storage": used,
        "energy_traded": 0.0,
        "total_cost": 0.0,
    }
    return AssetItem(uuid=uuid, name=uuid, kind="Storage", info=info)


def test_states_are_typed_for_the_strategy_and_stored_as_json():
    config = parse_fleet_config(
        {"aggregators": [{"name": "a", "assets": ["*"]}], "strategies": {"Storage": {"name": "storage_arbitrage"}}}
    )
    store = _Store(states={"ess": {"used_storage": 4.0, "held_kWh": 1.0, "avg_purchase_rate": 20.0, "old_key": 1}})
    ctx = WorkerContext(config, connection=None, store=store, link=None)
    batch, states, skipped = decide_slice(_task([_storage(used=5.0)]), ctx)
    # 1 kWh more stored since the last event: bought at the last bid rate (none: buy_rate_end 24.9).
    assert states["ess"]["held_kWh"] == 2.0 and states["ess"]["avg_purchase_rate"] == (20.0 + 24.9) / 2
    assert StorageState.model_validate(states["ess"]) == StorageState(**states["ess"])
    assert "old_key" not in states["ess"] and skipped == 0
    assert [command["type"] for command in batch["ess"]] == ["offer", "bid"]


def test_an_unreadable_stored_state_starts_afresh_with_a_rate_limited_log(caplog):
    spec = get_strategy("storage_arbitrage")
    garbage = ["not a state", [1, 2], {"used_storage": "full"}, {"held_kWh": -1}, {"avg_purchase_rate": float("nan")}]
    with caplog.at_level(logging.WARNING, logger="workers.tasks"):
        loaded = [load_state(spec, stored, "ess") for stored in garbage * 3]
    assert all(state == StorageState() for state in loaded)
    warnings = [record for record in caplog.records if "unreadable" in record.getMessage()]
    assert 1 <= len(warnings) <= 5 and "ess" in warnings[0].getMessage()  # not one per bad state
    assert load_state(spec, None, "ess") is load_state(spec, {}, "ess") is spec.fresh_state
    stateless = get_strategy("price_ramp")
    assert load_state(stateless, {"kept": 1}, "pv") is stateless.fresh_state  # what older versions stored
    assert isinstance(Decision(commands=[], state=spec.fresh_state).state, StorageState)


def test_operator_controls_pause_an_asset_and_override_its_parameters():
    config = parse_fleet_config(
        {"aggregators": [{"name": "a", "assets": ["load-*"]}], "strategies": {"Load": {"name": "price_ramp"}}}
    )
    store = _Store(
        controls={
            "id-0": {"paused": True},
            "id-1": {"params": {"initial_buying_rate": 20, "final_buying_rate": 25}},
            "id-2": {"params": {"initial_buying_rate": 40, "final_buying_rate": 10}},
        }
    )
    ctx = WorkerContext(config, connection=None, store=store, link=None)
    assets = [
        AssetItem(
            uuid=f"id-{i}",
            name=f"load-{i}",
            kind="Load",
            info={"energy_requirement_kWh": 0.5, "energy_active_in_bids": 0.0, "energy_traded": 0.0, "total_cost": 0.0},
        )
        for i in range(4)
    ]
    batch, states, skipped = decide_slice(_task(assets), ctx)
    assert "id-0" not in batch and "id-0" not in states  # paused: no orders, state untouched
    rate = {uuid: commands[0]["price"] / commands[0]["energy"] for uuid, commands in batch.items()}
    assert rate["id-1"] == 20  # the operator's initial buying rate at 0 % completion
    assert rate["id-2"] == rate["id-3"] == 0  # an invalid override (ramp pointing down) is ignored
    assert skipped == 0
