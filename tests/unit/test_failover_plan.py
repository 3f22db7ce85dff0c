"""Who consumes which shard queue when workers come and go (orchestrator.failover_plan)."""

from __future__ import annotations

from orchestrator.failover_plan import ConsumerPlan, lost_nodes, plan_consumers

QUEUES = [f"shard-{n}" for n in range(4)]
W1 = "w1@hub"
W2 = "w2@hub"
W3 = "w3@hub"
HOME1 = frozenset({"shard-0", "shard-2"})
HOME2 = frozenset({"shard-1", "shard-3"})


def _apply(consuming: dict[str, set[str]], plan: ConsumerPlan) -> dict[str, set[str]]:
    after = {node: set(queues) for node, queues in consuming.items()}
    for node, queue in plan.add:
        after[node].add(queue)
    for node, queue in plan.cancel:
        after[node].discard(queue)
    return after


def test_everybody_home_means_nothing_to_do():
    plan = plan_consumers(QUEUES, {W1: HOME1, W2: HOME2}, {W1: HOME1, W2: HOME2})
    assert not plan


def test_a_lost_workers_queues_go_to_the_survivor():
    plan = plan_consumers(QUEUES, {W1: HOME1}, {W1: HOME1})
    assert plan.add == [(W1, "shard-1"), (W1, "shard-3")]
    assert plan.cancel == []


def test_lost_queues_are_spread_over_the_least_loaded_survivors():
    homes = {W1: frozenset({"shard-0"}), W3: frozenset({"shard-2"})}
    plan = plan_consumers(QUEUES, homes, {W1: {"shard-0"}, W3: {"shard-2"}})
    after = _apply({W1: {"shard-0"}, W3: {"shard-2"}}, plan)
    assert after[W1] | after[W3] == set(QUEUES)
    assert sorted(len(queues) for queues in after.values()) == [2, 2]


def test_a_returning_worker_gets_its_queues_back_and_the_borrower_lets_go():
    consuming = {W1: set(QUEUES), W2: set(HOME2)}
    plan = plan_consumers(QUEUES, {W1: HOME1, W2: HOME2}, consuming)
    assert plan.add == []
    assert plan.cancel == [(W1, "shard-1"), (W1, "shard-3")]
    assert _apply(consuming, plan) == {W1: set(HOME1), W2: set(HOME2)}


def test_a_borrower_keeps_what_it_holds_instead_of_moving_it():
    homes = {W1: HOME1, W3: frozenset()}
    consuming = {W1: set(HOME1) | {"shard-3"}, W3: {"shard-1"}}
    assert not plan_consumers(QUEUES, homes, consuming)


def test_home_queues_are_never_cancelled_and_foreign_queues_left_alone():
    consuming = {W1: set(HOME1) | {"celery", "shard-1"}, W2: set(HOME2)}
    plan = plan_consumers(QUEUES, {W1: HOME1, W2: HOME2}, consuming)
    assert plan.cancel == [(W1, "shard-1")]


def test_no_live_worker_plans_nothing():
    assert not plan_consumers(QUEUES, {}, {})


def test_a_queue_no_worker_was_started_for_is_lent_too():
    plan = plan_consumers(QUEUES, {W1: HOME1, W2: frozenset({"shard-1"})}, {W1: HOME1, W2: {"shard-1"}})
    assert len(plan.add) == 1 and plan.add[0][1] == "shard-3"


def test_silence_longer_than_the_limit_is_lost():
    seen = {W1: 100.0, W2: 96.9, W3: 97.0}
    assert lost_nodes(seen, now=100.0, silence=3.0) == {W2}
