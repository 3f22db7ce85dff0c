"""Operator commands as a careless operator types them: nan values, a wait with nobody answering,
and a command over a whole aggregator of several slices. Real Redis as broker and state store."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import pytest
import redis
import yaml

from orchestrator.celery_app import make_app
from orchestrator.config import load_fleet_config
from orchestrator.operator import Operator, OperatorCommand
from orchestrator.state import StateStore
from workers.operator_tasks import _transaction_id

pytestmark = pytest.mark.integration

FLEET = "operator-safety"
SLICES = 4


@pytest.fixture()
def seeded_fleet(redis_url, tmp_path):
    """A fleet as its dispatcher publishes it (placements of 4 slices on 2 shards), no workers."""
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        yaml.safe_dump(
            {
                "name": FLEET,
                "aggregators": [{"name": "households", "assets": ["L*"]}],
                "strategies": {"Load": {"name": "price_ramp"}},
            }
        )
    )
    client = redis.Redis.from_url(redis_url)
    store = StateStore(client, FLEET)
    store.reset()
    for queue in ("shard-0", "shard-1"):
        client.delete(queue)
    store.meta(
        "placements",
        {
            f"L{i}": {
                "uuid": f"id-{i}",
                "aggregator": "households",
                "aggregator_uuid": "agg",
                "slice": i,
                "shard": i % 2,
            }
            for i in range(SLICES)
        },
    )
    store.meta("kinds", {f"id-{i}": "Load" for i in range(SLICES)})
    yield fleet_file, client, store
    store.reset()
    for queue in ("shard-0", "shard-1"):
        client.delete(queue)
    client.close()


def _enqueue(redis_url: str, fleet_file, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gsy_e_sdk", "enqueue", "--config", str(fleet_file), "--redis-url", redis_url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["order", "L1", "--side", "bid", "--energy", "nan", "--rate", "10"],
        ["order", "L1", "--side", "bid", "--energy", "0.5", "--rate", "nan"],
    ],
)
def test_nan_values_get_one_line_error_and_exit_2(seeded_fleet, redis_url, args):
    fleet_file, _, _ = seeded_fleet
    result = _enqueue(redis_url, fleet_file, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "finite" in result.stderr


def test_a_wait_nobody_answers_ends_at_its_timeout(seeded_fleet, redis_url):
    """The wait used to block in one BLPOP as long as the client's socket timeout, which redis-py
    then retried from the start: a 30 s wait ran past 90 s. A client with a 2 s socket timeout
    waiting 5 s shows the same shape in seconds."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2, retry_on_timeout=True)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="0 of 1 answers"):
        StateStore(client, FLEET).wait_results("nobody-answers", 1, timeout=5)
    assert 5 <= time.monotonic() - started < 7
    client.close()


def _queued_commands(client: redis.Redis) -> list[OperatorCommand]:
    commands = []
    for queue in ("shard-0", "shard-1"):
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            body = json.loads(base64.b64decode(message["body"]))
            args = body[0] if isinstance(body, list) else body["args"]
            commands.append(OperatorCommand.model_validate(args[0]))
    return commands


def test_pausing_a_whole_aggregator_gives_each_slice_its_own_batch_id(seeded_fleet, redis_url):
    """One id for every slice made the exchange apply one slice's batch and ignore the rest."""
    fleet_file, client, store = seeded_fleet
    config = load_fleet_config(fleet_file)
    app = make_app(redis_url)
    enqueued = Operator(config, store, app).pause(aggregator="households")
    commands = _queued_commands(client)
    assert len(enqueued.task_ids) == len(commands) == SLICES
    assert sorted(command.slice for command in commands) == list(range(SLICES))
    assert len({_transaction_id(command) for command in commands}) == SLICES
