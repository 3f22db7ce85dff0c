"""The shared Redis connection, its reader thread, pending responses and hook runner.

Everything runs against the real Redis of the ``redis_url`` fixture.
"""

import json
import logging
import threading
import time

import pytest
import redis

from gsy_e_sdk.hooks import HookRunner
from gsy_e_sdk.redis_client_base import AreaChannelNames
from gsy_e_sdk.wire.pending import PendingResponses, new_transaction_id
from gsy_e_sdk.wire.redis_connection import READER_THREAD_NAME, RedisConnection, get_connection


class Inbox:
    """A handler that records what it gets and lets the test wait for it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []
        self._arrived = threading.Condition()

    def __call__(self, channel: str, payload: dict) -> None:
        with self._arrived:
            self.messages.append((channel, payload))
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict]]:
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"got {len(self.messages)} of {count} messages: {self.messages}"
            )
            return list(self.messages)


@pytest.fixture()
def connection(redis_url):
    connection = RedisConnection(redis_url)
    yield connection
    connection.close()


def test_channel_and_pattern_handlers_receive_parsed_payloads(connection, redis_client):
    exact, pattern = Inbox(), Inbox()
    connection.subscribe({"unit/exact": exact}, {"unit/pattern/*": pattern})
    # subscribe() returns only once Redis confirmed, so nothing published now can be missed.
    assert dict(redis_client.pubsub_numsub("unit/exact"))["unit/exact"] >= 1
    redis_client.publish("unit/exact", json.dumps({"n": 1}))
    redis_client.publish("unit/pattern/a/b", json.dumps({"n": 2}))
    assert exact.wait_for(1) == [("unit/exact", {"n": 1})]
    assert pattern.wait_for(1) == [("unit/pattern/a/b", {"n": 2})]


def test_area_wildcard_escapes_glob_characters(connection, redis_client):
    inbox = Inbox()
    names = AreaChannelNames.for_prefix("PV [1]*?")
    assert names.register_response == "PV [1]*?/response/register_participant"
    connection.subscribe(pattern_handlers={names.all_messages: inbox})
    redis_client.publish("PV 1xy/offer", json.dumps({"wrong": True}))
    redis_client.publish("PV [1]*?/offer", json.dumps({"right": True}))
    assert inbox.wait_for(1) == [("PV [1]*?/offer", {"right": True})]
    time.sleep(0.2)
    assert len(inbox.messages) == 1


def test_many_handlers_share_one_reader_and_dispatch_by_lookup(connection, redis_client):
    threads_before = threading.active_count()
    inboxes = [Inbox() for _ in range(1000)]
    connection.subscribe({f"unit/many/{i}": inbox for i, inbox in enumerate(inboxes)})
    extra = Inbox()
    connection.subscribe({"unit/many/7": extra})  # a second handler on the same channel
    for i in (0, 7, 999):
        redis_client.publish(f"unit/many/{i}", json.dumps({"i": i}))
    assert inboxes[999].wait_for(1) == [("unit/many/999", {"i": 999})]
    assert inboxes[7].wait_for(1) and extra.wait_for(1)
    assert not inboxes[1].messages
    # 1,000 channels cost this connection one reader thread and nothing more.
    assert connection.reader_alive and connection._reader.name == READER_THREAD_NAME
    assert threading.active_count() - threads_before <= 1


def test_unsubscribe_stops_delivery(connection, redis_client):
    kept, dropped = Inbox(), Inbox()
    connection.subscribe({"unit/unsub": kept, "unit/unsub-other": dropped})
    connection.unsubscribe({"unit/unsub-other": dropped})
    redis_client.publish("unit/unsub-other", json.dumps({"x": 1}))
    redis_client.publish("unit/unsub", json.dumps({"x": 2}))
    kept.wait_for(1)
    time.sleep(0.2)
    assert dropped.messages == []
    assert "unit/unsub-other" not in connection.pubsub.channels


def test_idle_reader_uses_no_cpu(connection):
    connection.subscribe({"unit/idle": Inbox()})
    time.sleep(0.2)
    started = time.process_time()
    time.sleep(2.0)
    used = time.process_time() - started
    assert used < 0.1, f"idle process used {used:.3f} s CPU in 2 s"


def test_bad_messages_and_failing_handlers_do_not_stop_the_reader(connection, redis_client, caplog):
    inbox = Inbox()

    def explode(channel, payload):
        raise RuntimeError("handler bug")

    connection.subscribe({"unit/robust": explode})
    connection.subscribe({"unit/robust": inbox})
    with caplog.at_level(logging.WARNING, logger="gsy_e_sdk.wire.redis_connection"):
        redis_client.publish("unit/robust", "not json")
        redis_client.publish("unit/robust", json.dumps([1, 2]))
        redis_client.publish("unit/robust", json.dumps({"ok": 1}))
        redis_client.publish("unit/robust", json.dumps({"ok": 2}))
        assert [p for _, p in inbox.wait_for(2)] == [{"ok": 1}, {"ok": 2}]
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)
    assert "not JSON" in caplog.text and "not a JSON object" in caplog.text
    assert (connection.dropped_messages, connection.handler_failures) == (2, 2)
    assert connection.reader_alive


def test_reader_survives_a_redis_restart_and_resubscribes(private_redis, caplog):
    # A Redis of its own: restarting the session's would cut every connection other tests cached.
    connection = RedisConnection(private_redis.url)
    redis_client = redis.Redis.from_url(private_redis.url)
    try:
        _reader_survives_a_restart(connection, private_redis, redis_client, caplog)
    finally:
        connection.close()
        redis_client.close()


def _reader_survives_a_restart(connection, redis_server, redis_client, caplog) -> None:
    exact, pattern = Inbox(), Inbox()
    connection.subscribe({"unit/restart": exact}, {"unit/restart-p/*": pattern})
    with caplog.at_level(logging.WARNING, logger="gsy_e_sdk.wire.redis_connection"):
        redis_server.restart()
        deadline = time.monotonic() + 15
        while connection.reconnections == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connection.reconnections >= 1
        # Publishing goes through the pool, which reconnects by itself (redis-py Retry).
        connection.publish("unit/restart", {"after": "restart"})
        redis_client.publish("unit/restart-p/x", json.dumps({"after": "restart"}))
        assert exact.wait_for(1) == [("unit/restart", {"after": "restart"})]
        assert pattern.wait_for(1) == [("unit/restart-p/x", {"after": "restart"})]
    assert "Reconnected to Redis" in caplog.text and "gap of about" in caplog.text
    assert connection.reader_alive


def test_shared_connection_is_one_per_url(redis_url):
    first = get_connection(redis_url)
    assert get_connection(redis_url) is first
    first.subscribe({"unit/shared": Inbox()})
    readers = [t for t in threading.enumerate() if t.name == READER_THREAD_NAME and t is first._reader]
    assert len(readers) == 1


def test_pending_wait_resolves_or_raises_with_command_and_transaction_id():
    pending = PendingResponses()
    transaction_id = new_transaction_id()
    future = pending.expect(transaction_id, owner="me")
    assert pending.owned_by(transaction_id, "me") and not pending.owned_by(transaction_id, "you")
    threading.Timer(0.05, pending.resolve, (transaction_id, {"status": "ready"})).start()
    assert pending.wait(transaction_id, future, 2, RuntimeError, "x", "cmd") == {"status": "ready"}
    assert not pending.resolve(transaction_id, {}) and len(pending) == 0
    assert not pending.resolve(["unhashable"], {})

    class MyError(Exception):
        pass

    other = new_transaction_id()
    started = time.monotonic()
    with pytest.raises(MyError) as raised:
        pending.wait(other, pending.expect(other), 0.2, MyError, "API has timed out.", "SELECT")
    assert time.monotonic() - started < 1
    text = str(raised.value)
    assert text.startswith("API has timed out.") and "SELECT" in text and other in text
    assert len(pending) == 0


def test_hook_runner_keeps_order_and_survives_exceptions(caplog):
    runner = HookRunner()
    seen = []

    def slow(n):
        time.sleep(0.01)
        seen.append(n)

    def broken(_):
        raise ValueError("bad hook")

    for n in range(20):
        runner.submit("slow", slow, n)
        if n == 5:
            runner.submit("on_trade", broken, n)
    assert runner.wait_idle(5)
    assert seen == list(range(20))
    record = next(r for r in caplog.records if "on_trade raised exception: bad hook." in r.getMessage())
    assert record.exc_info is not None
