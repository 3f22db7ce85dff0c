"""The shard queues on each broker: what a fresh run drops (``purge_shard_queues``)."""

from __future__ import annotations

import pytest

from orchestrator.celery_app import make_app, purge_shard_queues
from orchestrator.sharding import queue_name

pytestmark = pytest.mark.integration


def test_a_fresh_run_drops_the_tasks_left_in_every_shard_queue(broker_url: str):
    app = make_app(broker_url)
    try:
        for shard in range(3):
            for _ in range(shard + 1):
                app.send_task("workers.on_tick", args=[[]], queue=queue_name(shard))
        queues = [queue_name(shard) for shard in range(4)]  # shard-3 was never declared
        assert purge_shard_queues(app, queues) == 6
        assert purge_shard_queues(app, queues) == 0
    finally:
        app.close()
