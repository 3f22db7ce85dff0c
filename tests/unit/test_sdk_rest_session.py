"""The HTTP layer: retry policy, timeouts, body conventions, 401 re-login and failure logging.

The transport function ``rest_session.send`` is replaced by a recorder returning prepared
``requests.Response`` objects, so no server is involved.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
import requests
from urllib3.exceptions import ConnectTimeoutError
from urllib3.response import HTTPResponse
from urllib3.util import Retry

from gsy_e_sdk import constants, rest_session
from gsy_e_sdk.jwt_auth import TokenProvider


def response(status: int, body: object, headers: dict | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    answer.headers.update(headers or {})
    return answer


class Transport:
    """Stands in for ``rest_session.send``: records calls, plays back answers."""

    def __init__(self, *answers: requests.Response | None) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict, dict]] = []

    def __call__(self, method, url, body=None, headers=None):
        self.calls.append((method, url, body, headers or {}))
        return self.answers.pop(0)


class Tokens(TokenProvider):
    def __init__(self) -> None:
        self.issued = iter(["token-one-aaaa", "token-two-bbbb", "token-three-cccc"])
        super().__init__("https://d.example", "u", lambda *_: next(self.issued))


@pytest.fixture(autouse=True)
def password(monkeypatch):
    monkeypatch.setenv("API_CLIENT_PASSWORD", "pw-for-session-tests")


def test_the_session_retries_with_jittered_backoff_and_honours_retry_after():
    adapter = rest_session.session().get_adapter("https://d3aweb.gridsingularity.com/x")
    retry: Retry = adapter.max_retries
    assert isinstance(retry, rest_session.CappedRetry)
    assert {429, 502, 503, 504} <= set(retry.status_forcelist)
    assert retry.allowed_methods is None  # POST too: our bodies carry transaction ids
    assert retry.respect_retry_after_header and not retry.raise_on_status
    assert 0 < retry.total <= 10 and retry.backoff_jitter > 0 and retry.backoff_max <= 60
    assert rest_session.session() is rest_session.session()  # one per process
    assert rest_session.TIMEOUT == (constants.HTTP_CONNECT_TIMEOUT_SECS, constants.HTTP_READ_TIMEOUT_SECS)
    # Backoff grows exponentially and stays bounded (jitter included).
    delays = []
    for _ in range(retry.total):
        retry = retry.increment("POST", "/x", error=ConnectTimeoutError())
        delays.append(retry.get_backoff_time())
    assert delays[2] > delays[1] > 0 and max(delays) <= retry.backoff_max + retry.backoff_jitter


def test_a_huge_retry_after_is_capped():
    retry = rest_session.retry_policy()
    assert retry.get_retry_after(HTTPResponse(status=429, headers={"Retry-After": "3"})) == 3
    capped = retry.get_retry_after(HTTPResponse(status=429, headers={"Retry-After": "86400"}))
    assert capped == constants.HTTP_RETRY_AFTER_MAX_SECS


def test_json_body_with_transaction_id_and_jwt_header_on_get_too(monkeypatch):
    transport = Transport(response(200, [{"name": "a", "uuid": "u"}]))
    monkeypatch.setattr(rest_session, "send", transport)
    tokens = Tokens()
    answer = rest_session.request_json("GET", "https://d.example/list/", {"x": 1}, auth=tokens)
    assert answer == [{"name": "a", "uuid": "u"}]
    method, _, body, headers = transport.calls[0]
    assert method == "GET" and body["x"] == 1 and uuid.UUID(body["transaction_id"])
    assert headers["Authorization"] == "JWT token-one-aaaa"
    kept = rest_session.with_transaction_id({"transaction_id": "mine"})
    assert kept == {"transaction_id": "mine"}


def test_a_401_logs_in_again_and_repeats_the_same_request_once(monkeypatch):
    transport = Transport(response(401, {"error": "Signature has expired."}), response(200, {"ok": 1}))
    monkeypatch.setattr(rest_session, "send", transport)
    tokens = Tokens()
    assert rest_session.request_json("POST", "https://d.example/x/", {"a": 1}, auth=tokens) == {"ok": 1}
    (_, _, first_body, first_headers), (_, _, again_body, again_headers) = transport.calls
    assert first_headers["Authorization"] == "JWT token-one-aaaa"
    assert again_headers["Authorization"] == "JWT token-two-bbbb"
    assert again_body == first_body  # same transaction id: the server may dedupe
    assert tokens.logins == 2


def test_a_second_401_is_logged_and_returns_none(monkeypatch, caplog):
    transport = Transport(response(401, {"error": "no"}), response(401, {"error": "still no"}))
    monkeypatch.setattr(rest_session, "send", transport)
    with caplog.at_level(logging.DEBUG):
        assert rest_session.request_json("GET", "https://d.example/y", auth=Tokens()) is None
    assert len(transport.calls) == 2
    assert (
        'Request to https://d.example/y failed with status code 401. Response body: {"error": "still no"}'
    ) in caplog.text


def test_non_2xx_is_logged_redacted_and_returns_none(monkeypatch, caplog):
    tokens = Tokens()
    tokens.token()
    echo = response(500, {"echo": "token-one-aaaa", "password": "pw-for-session-tests"})
    monkeypatch.setattr(rest_session, "send", Transport(echo))
    with caplog.at_level(logging.DEBUG):
        assert rest_session.request_json("POST", "https://d.example/z/", auth=tokens) is None
    assert "failed with status code 500" in caplog.text
    assert "token-one-aaaa" not in caplog.text and "pw-for-session-tests" not in caplog.text


def test_transport_errors_return_none_without_secrets(monkeypatch, caplog):
    monkeypatch.setattr(rest_session, "session", requests.Session)  # no retries: fail at once
    with caplog.at_level(logging.DEBUG):
        # Nothing listens on port 9 of localhost: connection refused.
        answer = rest_session.send(
            "POST", "http://127.0.0.1:9/api-token-auth/", {"username": "u", "password": "pw-for-session-tests"}
        )
    assert answer is None
    assert "Request to http://127.0.0.1:9/api-token-auth/ failed" in caplog.text
    assert "pw-for-session-tests" not in caplog.text
