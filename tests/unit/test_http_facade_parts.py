"""Pure parts of the HTTP facade: users, tokens, rate limits, request models, registry views, held
answers, GraphQL bounds."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from gsy_local_exchange.descriptor import Node
from gsy_local_exchange.http import graphql_api
from gsy_local_exchange.http import models as m
from gsy_local_exchange.http.hub import HeldAnswers, WebsocketHub
from gsy_local_exchange.http.rate_limit import RateLimiter
from gsy_local_exchange.http.registry import registry_tree, scenario_tree
from gsy_local_exchange.http.tokens import TokenError, TokenIssuer
from gsy_local_exchange.http.users import UsersError, load_users

SECRET = "unit-test-secret-with-at-least-32-bytes"


def test_users_come_from_file_then_env_then_api_client_pair(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text("alice: wonderland\nbob: builder\n")
    assert load_users(path, {}).names == ["alice", "bob"]
    from_env = load_users(
        None,
        {"GSY_EXCHANGE_USERS": json.dumps({"carol": "pw"}), "API_CLIENT_USERNAME": "x", "API_CLIENT_PASSWORD": "y"},
    )
    assert from_env.names == ["carol"]
    pair = load_users(None, {"API_CLIENT_USERNAME": "dave", "API_CLIENT_PASSWORD": "pw"})
    assert pair.check("dave", "pw") and not pair.check("dave", "PW") and not pair.check("eve", "pw")
    assert not pair.check(None, "pw")


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"GSY_EXCHANGE_USERS": "not json"},
        {"GSY_EXCHANGE_USERS": "[1, 2]"},
        {"GSY_EXCHANGE_USERS": json.dumps({"frank": ""})},
    ],
)
def test_bad_user_lists_are_refused_without_echoing_passwords(environ: dict) -> None:
    with pytest.raises(UsersError) as error:
        load_users(None, environ)
    assert "GSY_EXCHANGE_USERS" in str(error.value) or "no users configured" in str(error.value)


def test_user_file_errors_do_not_leak_passwords(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"": "hunter2-secret"}))
    with pytest.raises(UsersError) as error:
        load_users(path, {})
    assert "hunter2-secret" not in str(error.value)


def test_tokens_round_trip_and_every_failure_has_its_reason() -> None:
    issuer = TokenIssuer(SECRET, lifetime_s=60)
    token = issuer.issue("alice")
    assert issuer.identity(f"JWT {token}").user == "alice"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert 59 <= claims["exp"] - claims["iat"] <= 60
    expired = jwt.encode({"sub": "alice", "exp": int(time.time()) - 1}, SECRET, algorithm="HS256")
    forged = TokenIssuer("another-secret-with-at-least-32-bytes!").issue("alice")
    cases = {
        None: "not provided",
        f"Bearer {token}": "JWT <token>",
        "JWT ": "JWT <token>",
        f"JWT {expired}": "expired",
        f"JWT {forged}": "decoding",
        "JWT garbage": "decoding",
    }
    for header, reason in cases.items():
        with pytest.raises(TokenError, match=reason):
            issuer.identity(header)


def test_rate_limiter_allows_a_burst_then_asks_to_wait_until_refilled() -> None:
    now = [100.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [limiter.retry_after("u") for _ in range(3)] == [0, 0, 1]
    assert limiter.retry_after("other") == 0  # per user
    now[0] += 0.5
    assert limiter.retry_after("u") == 0
    assert RateLimiter(0).retry_after("u") == 0


def test_request_models_name_the_bad_field() -> None:
    with pytest.raises(ValidationError) as error:
        m.Forecast.model_validate({"energy_forecast": {"2026-01-01T10:00": float("nan")}})
    assert m.field_errors(error.value)[0]["field"] == "energy_forecast"
    with pytest.raises(ValidationError):
        m.Forecast.model_validate({"energy_forecast": {}, "surprise": 1})
    with pytest.raises(ValidationError, match="exactly one"):
        m.GridFee.model_validate({"fee_const": 1, "fee_percent": 2})
    assert m.GridFee.model_validate({"fee_const": 3.5}).fee_const == 3.5
    batch = m.Batch.model_validate({"aggregator_uuid": "a", "batch_commands": {"x": {"type": "bid"}}})
    assert batch.batch_commands == {"x": [{"type": "bid"}]}
    with pytest.raises(ValidationError) as error:
        m.Selection.model_validate({"aggregator_uuid": "a"})
    assert m.field_errors(error.value)[0]["field"] == "device_uuid"


def test_registry_marks_controllable_nodes_and_their_aggregator() -> None:
    root = Node(
        name="Grid",
        type="Area",
        uuid="g",
        children=[
            Node(
                name="House",
                type="Area",
                uuid="h",
                prefix="house",
                children=[Node(name="pv", type="PV", uuid="p", prefix="pv"), Node(name="fixed", type="Load", uuid="f")],
            )
        ],
    )
    tree = registry_tree(root, {"p": "agg"})
    house = tree["children"][0]
    assert tree["registered"] is None and house["registered"] is True
    assert house["children"][0] == {
        "name": "pv",
        "type": "PV",
        "uuid": "p",
        "attributes": None,
        "registered": True,
        "aggregator_name": "agg",
    }
    assert house["children"][1]["registered"] is None and "children" not in house["children"][1]
    taken = registry_tree(root, {}, {"p"})["children"][0]["children"][0]  # another user's
    assert taken["registered"] is False and taken["aggregator_name"] is None
    assert scenario_tree(root)["children"][0]["children"][1] == {"name": "fixed", "uuid": "f", "type": "Load"}


def test_rate_limiter_can_check_without_counting_and_forgets_the_oldest_keys() -> None:
    now = [0.0]
    limiter = RateLimiter(1, burst=2, clock=lambda: now[0], max_keys=3)
    assert [limiter.blocked_for("peer") for _ in range(5)] == [0] * 5  # checking costs nothing
    assert [limiter.retry_after("peer") for _ in range(3)] == [0, 0, 1]
    assert limiter.blocked_for("peer") == 1
    for key in ("b", "c", "d"):
        limiter.retry_after(key)
    assert limiter.blocked_for("peer") == 0  # evicted: at most max_keys buckets are kept


def test_held_answers_keep_order_and_their_bounds() -> None:
    now = [0.0]
    held = HeldAnswers(max_age=30, per_key=3, max_frames=5, max_bytes=1000, clock=lambda: now[0])
    for index in range(4):
        held.add("area:a", b"a%d" % index)
    assert held.take("area:a") == [b"a1", b"a2", b"a3"]  # the oldest went past the per-key bound
    for index in range(3):
        held.add("area:b", b"b%d" % index)
        held.add("area:c", b"c%d" % index)
    assert len(held) == 5 and held.take("area:b") == [b"b1", b"b2"]  # the oldest overall went first
    held.add("area:d", b"x" * 1001)
    assert held.take("area:d") == []  # larger than everything held may be
    now[0] += 31
    held.add("area:e", b"e")
    assert held.take("area:c") == [] and held.take("area:e") == [b"e"] and held.bytes == 0


def test_a_socket_gets_held_answers_after_its_prelude_and_never_twice() -> None:
    hub = WebsocketHub()
    hub.deliver("aggregator:x", b"selected", hold=True)
    hub.deliver("aggregator:x", b"batch answer", hold=True)
    hub.deliver("aggregator:x", b"tick event")  # events are not held

    async def open_socket(prelude: list[bytes]) -> list[bytes]:
        subscriber = hub.attach("aggregator:x", prelude)
        hub.deliver("aggregator:x", b"later")
        await asyncio.sleep(0.01)
        hub.detach(subscriber)
        return [subscriber.queue.get_nowait() for _ in range(subscriber.queue.qsize())]

    assert asyncio.run(open_socket([b"selected"])) == [b"selected", b"batch answer", b"later"]
    assert asyncio.run(open_socket([])) == [b"later"]  # delivered once: nothing stays held


def test_forecast_bodies_take_a_slot_map_or_watt_hours() -> None:
    assert m.Forecast.model_validate({"energy_Wh": 400}).energy_Wh == 400
    assert m.Measurement.model_validate({"energy_measurement": {"2026-01-01T10:00": 0.2}}).energy_Wh is None
    for body in ({}, {"energy_Wh": 1, "energy_forecast": {}}, {"energy_Wh": -1}, {"energy_Wh": float("inf")}):
        with pytest.raises(ValidationError):
            m.Forecast.model_validate(body)


def test_graphql_refuses_costly_queries_before_running_them() -> None:
    calls: list[str] = []

    def configuration(uuid: str) -> dict:
        calls.append(uuid)
        return {"uuid": uuid, "name": "Grid", "serialized": "{}"}

    def run(query: str, introspection: bool = False) -> dict:
        return graphql_api.execute(query, None, None, configuration, list, introspection)

    assert run('{ readConfiguration(uuid: "s") { uuid } }') == {"data": {"readConfiguration": {"uuid": "s"}}}
    nested = "query { ...F8 } fragment F0 on Query { aggregatorsList { name } } " + " ".join(
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 9)
    )
    refused = {
        "more than 4 root fields": "{ "
        + " ".join(f'a{i}: readConfiguration(uuid: "s") {{ uuid }}' for i in range(5))
        + " }",
        "more than 500 tokens": "{ "
        + " ".join(f'a{i}: readConfiguration(uuid: "s") {{ uuid }}' for i in range(99))
        + " }",
        "more than 100 fields": nested,
        "introspection has been disabled": "{ __schema { queryType { name } } }",
    }
    for reason, query in refused.items():
        answer = run(query)
        assert answer["data"] is None and reason in answer["errors"][0]["message"], answer
    assert calls == ["s"]  # nothing refused ever resolved
    assert run("{ __schema { queryType { name } } }", introspection=True)["data"]["__schema"]["queryType"]
