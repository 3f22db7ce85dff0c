"""The dispatcher counts the exchange's answers to its own slice batches, and nothing else."""

from __future__ import annotations

import redis

from orchestrator.answers import AnswerCounter
from orchestrator.state import StateStore


def test_answers_with_an_unknown_or_malformed_transaction_id_are_ignored(redis_url):
    store = StateStore(redis.Redis.from_url(redis_url), "answers")
    store.reset()
    counter = AnswerCounter(store)
    counter.expect(
        [
            {"event": "tick", "transaction_id": "mine", "shard": 3, "dispatched_at": 0.0},
            {"event": "finish", "transaction_id": "never-answered", "shard": 1, "dispatched_at": 0.0},
        ]
    )
    ready = {"responses": {"pv": [{"status": "ready"}, {"status": "error"}]}}
    for transaction_id in (["unhashable"], {"a": 1}, None, 5, "someone-elses", "never-answered"):
        counter.count({"transaction_id": transaction_id, **ready})  # must not raise, counts nothing
    counter.flush()
    assert "commands_accepted" not in store.counters()
    counter.count({"transaction_id": "mine", **ready})
    counter.count({"transaction_id": "mine", **ready})  # a re-sent batch's answer again: counted once
    counter.flush()
    counters = store.counters()
    assert (counters["commands_accepted"], counters["commands_rejected"]) == (1, 1)
    assert len(store.latencies()["shard-3"]) == 1
    store.reset()
