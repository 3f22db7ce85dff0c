"""Token provider (one login per process and user, refresh timing, single-flight re-login) and
the redaction that keeps secrets out of logs. Logins are injected functions, no server."""

from __future__ import annotations

import logging
import threading
import time

import jwt
import pytest

from gsy_e_sdk import constants, jwt_auth
from gsy_e_sdk.jwt_auth import TokenProvider, refresh_delay
from gsy_e_sdk.redaction import RedactingFilter, redact, remember_secret
from gsy_e_sdk.wire.per_process import PerProcessMap

KEY = "unit-test-signing-key-of-sufficient-length"


def make_token(**claims) -> str:
    return jwt.encode(claims, KEY, algorithm="HS256")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLogin:
    """Issues a fresh token per call, after ``delay`` seconds (to widen race windows)."""

    def __init__(self, lifetime: float = 100.0, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.lifetime = lifetime
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, domain: str, username: str, password: str) -> str:
        time.sleep(self.delay)
        with self._lock:
            self.calls.append((domain, username, password))
            number = len(self.calls)
        return make_token(sub=username, iat=0, exp=self.lifetime, n=number)


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("API_CLIENT_USERNAME", "unit-user")
    monkeypatch.setenv("API_CLIENT_PASSWORD", "unit-password-123")
    monkeypatch.setattr(jwt_auth, "_providers", PerProcessMap(jwt_auth._new_provider))


def test_refresh_delay_is_three_quarters_of_the_claimed_lifetime():
    assert refresh_delay(make_token(iat=1_000, exp=1_400)) == pytest.approx(300)
    assert refresh_delay(make_token(iat=5, exp=5 + 172_800)) == pytest.approx(129_600)
    # Without iat: the lifetime left by our clock.
    assert refresh_delay(make_token(exp=2_000), received_at=1_000) == pytest.approx(750)


def test_refresh_delay_falls_back_to_12_hours_and_never_below_the_minimum():
    assert refresh_delay(make_token(sub="x")) == constants.JWT_FALLBACK_REFRESH_SECS == 12 * 3600
    assert refresh_delay("not-a-jwt") == 12 * 3600
    assert refresh_delay(make_token(exp=10), received_at=100) == constants.JWT_MIN_REFRESH_SECS


def test_one_login_until_the_refresh_is_due_then_one_more():
    clock, login = FakeClock(), CountingLogin(lifetime=100)
    provider = TokenProvider("https://d.example", "unit-user", login, clock)
    first = provider.token()
    assert first and provider.token() == first and len(login.calls) == 1
    assert login.calls[0] == ("https://d.example", "unit-user", "unit-password-123")
    clock.now += 74.9
    assert provider.token() == first
    clock.now += 0.2  # past 3/4 of 100 s
    second = provider.token()
    assert second != first and len(login.calls) == 2 and provider.logins == 2


def test_concurrent_callers_share_one_login():
    login = CountingLogin(delay=0.2)
    provider = TokenProvider("https://d.example", "unit-user", login)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(provider.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(login.calls) == 1 and len(set(tokens)) == 1


def test_many_401s_for_the_same_token_cause_one_login():
    login = CountingLogin(delay=0.1)
    provider = TokenProvider("https://d.example", "unit-user", login)
    stale = provider.token()
    renewed: list[str] = []
    threads = [threading.Thread(target=lambda: renewed.append(provider.token_refused(stale))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(login.calls) == 2  # the first login and exactly one re-login
    assert set(renewed) == {provider.current} and stale not in renewed
    # A 401 for the renewed token is a new problem: it logs in again.
    provider.token_refused(provider.current)
    assert len(login.calls) == 3


def test_failed_login_returns_none_and_is_retried_on_next_use():
    answers = [None, make_token(iat=0, exp=100)]
    provider = TokenProvider("https://d.example", "unit-user", lambda *_: answers.pop(0))
    assert provider.token() is None and provider.current is None
    assert provider.token() is not None and provider.logins == 1


def test_credentials_come_from_the_environment_only(monkeypatch):
    first = jwt_auth.token_provider("https://d.example/")
    assert jwt_auth.token_provider("https://d.example") is first  # one per domain and user
    monkeypatch.setenv("API_CLIENT_USERNAME", "someone-else")
    assert jwt_auth.token_provider("https://d.example") is not first
    monkeypatch.delenv("API_CLIENT_USERNAME")
    with pytest.raises(KeyError):
        jwt_auth.token_provider("https://d.example")
    monkeypatch.delenv("API_CLIENT_PASSWORD")
    provider = TokenProvider("https://d.example", "u", CountingLogin())
    with pytest.raises(KeyError):
        provider.token()


def test_redact_hides_known_secrets():
    token = make_token(sub="redact-me", exp=99)
    remember_secret(token)
    remember_secret("hunter2-password")
    text = redact(f"body: {{'access': '{token}', 'password': 'hunter2-password'}}")
    assert token not in text and "hunter2-password" not in text and text.count("***") == 2


def test_websocket_header_debug_lines_are_blanked(caplog):
    logger = logging.getLogger("test_sdk_rest_auth.wire")
    logger.addFilter(RedactingFilter())
    never_seen = make_token(sub="never-registered", exp=5)
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        logger.debug("> %s: %s", "Authorization", f"JWT {never_seen}")
        logger.debug("> %s: %s", "Host", "127.0.0.1")
    assert never_seen not in caplog.text
    assert "> Authorization: ***" in caplog.text and "> Host: 127.0.0.1" in caplog.text
