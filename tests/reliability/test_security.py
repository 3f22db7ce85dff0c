"""Security of the fleet (GitHub issue 8), against real processes.

- JSON only: a pickled task message on a shard queue is refused by a real worker and never
  unpickled (the payload would create a file if it were), here.
- Flower refuses to start without basic auth in the compose deployment:
  ``tests/unit/test_deploy_compose.py::test_flower_requires_auth_from_env`` (and
  ``tests/integration/test_flower.py`` for the running server); not repeated here.
- No password or token in any log of a REST fleet run at DEBUG (exchange, dispatcher, workers), here.
- The HTTP facade refuses missing, expired and forged JWTs:
  ``tests/integration/test_exchange_http.py::test_tokens_missing_forged_and_expired_are_refused``.
"""

from __future__ import annotations

import pathlib
import pickle
import re
import socket
import sys
import time

import pytest

from orchestrator.celery_app import make_app
from orchestrator.messages import SliceTask
from orchestrator.processes import wait_for_exchange
from tests.reliability.fleet_harness import (
    SCENARIO,
    START,
    Fleet,
    Proc,
    fleet_dict,
    missing_by_slot,
    wait_until,
)

pytestmark = pytest.mark.integration


class Exploit:
    """Unpickling this creates ``marker``: proof that pickled content was deserialized."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_a_pickled_task_is_refused_and_never_executed(private_redis, tmp_path):
    fleet = Fleet(tmp_path, private_redis.url, fleet_dict("security-pickle"))
    app = make_app(private_redis.url)
    marker = tmp_path / "unpickled"
    try:
        worker = fleet.start_worker("guard", ["shard-0"])
        fleet.wait_workers(app, ["guard"])
        # A real on_finish task (its side effect: the fleet's finished_slices counter), pickled,
        # with an argument whose unpickling touches the marker file.
        payload = SliceTask(
            fleet="security-pickle",
            aggregator="households",
            aggregator_uuid="a",
            slice=0,
            shard=0,
            event="finish",
            dispatched_at=time.time(),
            transaction_id="t",
        ).model_dump()
        app.send_task("workers.on_finish", args=[payload, Exploit(marker)], queue="shard-0", serializer="pickle")
        wait_until(
            lambda: "ContentDisallowed" in worker.output() or "untrusted content" in worker.output(),
            30,
            "the worker to refuse the pickled message",
        )
        # The same task as JSON runs, so the worker was consuming that queue all along.
        app.send_task("workers.on_finish", args=[payload], queue="shard-0")
        wait_until(lambda: fleet.counters().get("finished_slices") == 1, 30, "the JSON task's side effect")
        time.sleep(0.5)
        assert fleet.client.llen("shard-0") == 0  # consumed (and dropped), not left for another worker
        assert worker.alive()
    finally:
        fleet.close()
    log = worker.output()
    assert not marker.exists(), "the worker unpickled the message"
    assert "Refusing to deserialize untrusted content of type pickle" in log, log[-3000:]
    assert len(re.findall(r"Task workers\.on_finish\[[0-9a-f-]+\] succeeded", log)) == 1  # the JSON one only
    # The payload is a real exploit: unpickled anywhere, it creates its file.
    armed = tmp_path / "armed"
    pickle.loads(pickle.dumps(Exploit(armed)))
    assert armed.exists()


USER, PASSWORD = "fleet-operator", "fleet-password-must-not-be-logged"
SIM = "3f0c8a58-5a0e-4bde-9e8f-6c1f1e2d7b11"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")  # header.payload of any JWT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_password_or_token_in_any_log_of_a_rest_fleet_run_at_debug(private_redis, tmp_path):
    """Exchange (with its HTTP facade), ``fleet dispatch`` and two workers, all at DEBUG into files.

    The dispatcher logs in and holds one websocket per aggregator, workers post batches over
    HTTP: every log line of a login, a token refresh, a websocket handshake and a batch post is
    written somewhere; none may carry the password or a JWT.
    """
    port = _free_port()
    credentials = {"API_CLIENT_USERNAME": USER, "API_CLIENT_PASSWORD": PASSWORD}
    fleet = Fleet(
        tmp_path,
        private_redis.url,
        fleet_dict(
            "security-rest",
            exchange={
                "mode": "rest",
                "domain_name": f"http://127.0.0.1:{port}",
                "websocket_domain_name": f"ws://127.0.0.1:{port}/external-ws",
                "simulation_id": SIM,
            },
            aggregators=[{"name": "households", "assets": ["Load *", "PV *", "Tesla Powerwall *"]}],
        ),
    )
    fleet.env.update(credentials)
    try:
        fleet.exchange = Proc(
            [
                sys.executable,
                "-m",
                "gsy_e_sdk",
                "--log-level",
                "DEBUG",
                "exchange",
                "run",
                "--scenario",
                str(SCENARIO),
                "--redis-url",
                private_redis.url,
                "--paused",
                "--duration",
                "30m",
                "--tick-length",
                "30s",
                "--start-date",
                START,
                "--results",
                str(fleet.results),
                "--http-port",
                str(port),
                "--simulation-id",
                SIM,
            ],
            tmp_path / "exchange.log",
            credentials,
        )
        wait_for_exchange(fleet.client, fleet.exchange.process)
        wait_until(lambda: "http: listening" in fleet.exchange.output(), 30, "the HTTP facade")
        for name in ("ra", "rb"):
            fleet.start_worker(name, log_level="DEBUG")
        dispatcher = fleet.start_dispatcher_process(log_level="DEBUG")
        wait_until(lambda: "dispatching 1 aggregators" in dispatcher.output(), 60, "the dispatcher to attach")
        fleet.wait_workers(make_app(private_redis.url), ["ra", "rb"])
        fleet.resume()
        assert fleet.wait_exchange(120) == 0, fleet.exchange.output()[-3000:]
        wait_until(lambda: not dispatcher.alive(), 30, "the dispatcher to finish")
    finally:
        fleet.close()

    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    assert set(logs) == {"exchange.log", "dispatcher-0.log", "ra.log", "rb.log"}
    for name, text in logs.items():
        assert PASSWORD not in text, f"the password is in {name}"
        assert not JWT.search(text), f"a JWT is in {name}: {JWT.search(text).group()[:20]}..."
    # The logs did record the authenticated traffic at DEBUG: the login, the websocket handshake
    # (its Authorization header line redacted), every batch post.
    assert "api-token-auth" in logs["dispatcher-0.log"]
    assert "> Authorization: ***" in logs["dispatcher-0.log"]
    assert all("batch-commands" in logs[name] for name in ("ra.log", "rb.log"))
    assert all(" DEBUG " in text or "DEBUG/" in text for text in logs.values())
    households = {order["asset"] for order in fleet.orders()}
    assert len(households) == 25
    assert missing_by_slot(fleet.orders(), ["2026-06-01T10:00", "2026-06-01T10:15"], households) == {}
