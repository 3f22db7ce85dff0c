"""A dispatcher whose event reader has died says so and stops, instead of waiting forever.

Observed: a reader thread killed by one malformed message left the dispatcher looking alive
while the exchange ran on without the fleet. Real Redis, real exchange, real reader thread.
"""

from __future__ import annotations

import threading

import pytest
import yaml

from gsy_e_sdk.wire.redis_connection import RedisConnection
from orchestrator.celery_app import make_app
from orchestrator.config import load_fleet_config
from orchestrator.dispatcher import Dispatcher, ReaderDied

pytestmark = pytest.mark.integration


def test_a_dead_reader_stops_the_dispatcher_with_an_error(redis_url, tmp_path, start_exchange):
    start_exchange("community.json", "--paused", "--duration", "1h")
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        yaml.safe_dump(
            {
                "name": "reader-health",
                "aggregators": [{"name": "h", "assets": ["PV *"]}],
                "strategies": {"PV": {"name": "price_ramp"}},
            }
        )
    )
    connection = RedisConnection(redis_url)  # its own, so stopping its reader touches no other test
    dispatcher = Dispatcher(load_fleet_config(fleet_file), connection, make_app(redis_url))
    dispatcher.start(fresh=True)
    assert dispatcher.link.listening()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            dispatcher.run()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    connection._stop.set()  # the reader thread ends, as if something had killed it
    connection._reader.join(timeout=5)
    runner.join(timeout=10)
    assert not runner.is_alive(), "the dispatcher kept waiting with a dead reader"
    assert len(outcome) == 1 and isinstance(outcome[0], ReaderDied)
    connection.close()
