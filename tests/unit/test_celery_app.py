"""The fleet's Celery app per broker kind: what each broker needs, and what every broker keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.utils.quorum_queues import detect_quorum_queues
from click.testing import CliRunner

from orchestrator.celery_app import (
    DEFAULT_HEARTBEAT_S,
    DELIVERY_LIMIT,
    HEARTBEAT_ENV,
    TASK_SERIALIZER,
    VISIBILITY_TIMEOUT_ENV,
    env_seconds,
    is_amqp,
    make_app,
)
from orchestrator.worker_entry import worker_command

AMQP_URLS = ["amqp://fleet:secret@rabbit:5672/fleet", "pyamqp://fleet:secret@rabbit//", "amqps://rabbit:5671//"]
REDIS_URLS = ["redis://127.0.0.1:6379/0", "rediss://:secret@redis:6380/1", "unix:///run/redis.sock"]
QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT}


@pytest.mark.parametrize("url", AMQP_URLS + REDIS_URLS)
def test_every_broker_keeps_json_late_acks_and_prefetch_one(url):
    conf = make_app(url).conf
    assert conf.broker_url == url
    assert conf.task_serializer == TASK_SERIALIZER and set(conf.accept_content) == {TASK_SERIALIZER, "json"}
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == "shard-0"


@pytest.mark.parametrize("url", AMQP_URLS)
def test_rabbitmq_shard_queues_are_quorum_queues_with_a_delivery_limit(url):
    app = make_app(url)
    assert is_amqp(url)
    assert app.amqp.queues["shard-0"].queue_arguments == QUORUM  # the default queue
    assert app.amqp.queues["shard-7"].queue_arguments == QUORUM  # created on first use
    assert app.amqp.queues["shard-7"].exchange.type == "topic"
    # Quorum queues refuse a global prefetch: the worker asks Celery whether any queue is one.
    assert detect_quorum_queues(app, "amqp") == (True, "shard-0")
    assert app.conf.worker_detect_quorum_queues
    assert app.conf.broker_native_delayed_delivery_queue_type == "classic"


def test_the_dispatcher_and_a_worker_declare_a_shard_queue_alike():
    """``send_task(queue=...)`` on one side, ``-Q`` on the other: RabbitMQ refuses a queue
    declared twice with different arguments (PRECONDITION_FAILED)."""
    url = AMQP_URLS[0]
    dispatcher, worker = make_app(url), make_app(url)
    routed = dispatcher.amqp.router.route({"queue": "shard-3"}, "workers.on_tick")["queue"]
    worker.amqp.queues.select(["shard-3", "shard-5"])
    consumed = worker.amqp.queues.consume_from["shard-3"]
    assert routed.as_dict(recurse=True) == consumed.as_dict(recurse=True)
    assert consumed.queue_arguments == QUORUM


@pytest.mark.parametrize("url", AMQP_URLS)
def test_rabbitmq_gets_heartbeats_and_publisher_confirms_but_no_redis_options(url, monkeypatch):
    monkeypatch.delenv(HEARTBEAT_ENV, raising=False)
    conf = make_app(url).conf
    assert conf.broker_heartbeat == DEFAULT_HEARTBEAT_S
    assert conf.broker_transport_options == {"confirm_publish": True}
    monkeypatch.setenv(HEARTBEAT_ENV, "4")
    assert make_app(url).conf.broker_heartbeat == 4


@pytest.mark.parametrize("url", REDIS_URLS)
def test_redis_keeps_its_visibility_timeout_and_plain_queues(url, monkeypatch):
    monkeypatch.setenv(VISIBILITY_TIMEOUT_ENV, "7")
    app = make_app(url)
    assert not is_amqp(url)
    assert app.conf.broker_transport_options == {
        "visibility_timeout": 7,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    assert app.amqp.queues["shard-0"].queue_arguments is None
    assert app.amqp.queues["shard-7"].queue_arguments is None


@pytest.mark.parametrize("name", ["GSY_FLEET_BROKER_HEARTBEAT", "GSY_FLEET_VISIBILITY_TIMEOUT"])
@pytest.mark.parametrize("value", ["abc", "0", "-5", "2.5"])
def test_a_bad_broker_setting_is_one_error_line_and_exit_2(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    fleet = Path(__file__).resolve().parents[2] / "orchestrator" / "fleets" / "community.yaml"
    result = CliRunner().invoke(worker_command, ["--config", str(fleet), "--print-only"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {name} must be a whole number of seconds >= 1, got {value!r}"
    ]


def test_broker_settings_in_whole_seconds_are_taken(monkeypatch):
    monkeypatch.setenv("GSY_FLEET_BROKER_HEARTBEAT", " 4 ")
    assert env_seconds("GSY_FLEET_BROKER_HEARTBEAT", 10) == 4
    monkeypatch.delenv("GSY_FLEET_BROKER_HEARTBEAT")
    assert env_seconds("GSY_FLEET_BROKER_HEARTBEAT", 10) == 10
