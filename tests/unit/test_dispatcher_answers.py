"""The dispatcher counts the exchange's answers to its own slice batches, and nothing else."""

from __future__ import annotations

import redis

from orchestrator.config import FleetConfig
from orchestrator.dispatcher import Dispatcher


class _NoExchange:
    """``_count_answers`` never talks to the exchange; nothing here is called."""


class _Connection:
    """What the dispatcher's state store needs of a ``RedisConnection``: its client."""

    def __init__(self, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)


def test_answers_with_an_unknown_or_malformed_transaction_id_are_ignored(redis_url):
    config = FleetConfig.model_validate(
        {
            "name": "answers",
            "aggregators": [{"name": "h", "assets": ["PV *"]}],
            "strategies": {"PV": {"name": "price_ramp"}},
        }
    )
    dispatcher = Dispatcher(config, _Connection(redis_url), app=None, link=_NoExchange())
    dispatcher._in_flight["mine"] = (3, 0.0)
    ready = {"responses": {"pv": [{"status": "ready"}, {"status": "error"}]}}
    for transaction_id in (["unhashable"], {"a": 1}, None, 5, "someone-elses"):
        dispatcher._count_answers({"transaction_id": transaction_id, **ready})  # must not raise
    assert dispatcher._answers == [] and list(dispatcher._in_flight) == ["mine"]
    dispatcher._count_answers({"transaction_id": "mine", **ready})
    [(shard, _, accepted, rejected)] = dispatcher._answers
    assert (shard, accepted, rejected) == (3, 1, 1)
