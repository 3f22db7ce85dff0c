"""JWT tokens for the hosted exchange: one login per process per (auth domain, user name).

Every REST client, websocket and GraphQL call of the process asks the shared ``TokenProvider``
for its token instead of logging in itself (the original logged in and ran a refresh timer per
client). The provider logs in lazily, refreshes when three quarters of the token's lifetime
(its ``exp`` claim) have passed - every 12 h for tokens without one (REST.md 1.3) - and, when the
exchange answers 401 anyway, logs in again once however many callers saw the 401 at the same
time (single flight).

Credentials come only from env ``API_CLIENT_USERNAME`` / ``API_CLIENT_PASSWORD`` (KeyError when
missing, REST.md 1.1). The password is read at each login and never stored; it and every token
are registered with ``redact`` so that text the SDK logs (response bodies, websocket debug
lines) cannot carry them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

from gsy_e_sdk import constants, rest_session
from gsy_e_sdk.redaction import redact, remember_secret
from gsy_e_sdk.version_check import validate_client_up_to_date
from gsy_e_sdk.wire import rest_paths as paths
from gsy_e_sdk.wire.per_process import PerProcessMap

logger = logging.getLogger(__name__)

USERNAME_ENV = "API_CLIENT_USERNAME"
PASSWORD_ENV = "API_CLIENT_PASSWORD"

# Login: (auth domain, user name, password) -> token or None.
LoginFunction = Callable[[str, str, str], "str | None"]


# Login ------------------------------------------------------------------------------------------


class _TokenResponse(BaseModel):
    """The body of ``POST /api-token-auth/``: the token in ``access`` (REST.md 1.1)."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)
    access: str


def login_url(auth_domain: str) -> str:
    return paths.url(auth_domain, paths.TOKEN)


def request_token(auth_domain: str, username: str, password: str) -> str | None:
    """One login; None (and an error log without secrets) unless the server answers 200."""

    remember_secret(password)
    response = rest_session.send("POST", login_url(auth_domain), {"username": username, "password": password})
    if response is None:
        return None
    if response.status_code != 200:
        logger.error(
            "Request for token authentication failed with status code %s. Response body: %s",
            response.status_code,
            redact(response.text),
        )
        return None
    validate_client_up_to_date(response)
    try:
        token = _TokenResponse.model_validate_json(response.content).access
    except ValidationError:
        logger.error(
            "Request for token authentication to %s answered 200 without a token in 'access'.", login_url(auth_domain)
        )
        return None
    remember_secret(token)
    return token


def refresh_delay(token: str, received_at: float | None = None) -> float:
    """Seconds after receipt at which ``token`` is refreshed: 3/4 of its lifetime.

    The lifetime is ``exp - iat`` when both claims are present (immune to clock skew between us
    and the server), else ``exp`` minus our clock; 12 h for a token without ``exp``.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return constants.JWT_FALLBACK_REFRESH_SECS
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, (int, float)):
        return constants.JWT_FALLBACK_REFRESH_SECS
    if isinstance(issued, (int, float)) and issued < expires:
        lifetime = expires - issued
    else:
        lifetime = expires - (time.time() if received_at is None else received_at)
    return max(constants.JWT_MIN_REFRESH_SECS, constants.JWT_REFRESH_FRACTION * lifetime)


# The provider -----------------------------------------------------------------------------------


class TokenProvider:
    """The token of one (auth domain, user name) for the whole process."""

    def __init__(
        self,
        auth_domain: str,
        username: str,
        login: LoginFunction = request_token,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.auth_domain = auth_domain
        self.username = username
        self.logins = 0  # successful logins so far (observability, tests)
        self._login_function = login
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()

    @property
    def current(self) -> str | None:
        """The token held now, without logging in (None before the first login)."""
        return self._token

    def token(self) -> str | None:
        """A token that is not due for refresh; logs in when needed. None if login fails."""
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token
        with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token  # another thread refreshed while we waited for the lock
            return self._login()

    def token_refused(self, refused: str | None) -> str | None:
        """The server answered 401 for ``refused``: log in again, once for all such callers."""
        with self._lock:
            if self._token is not None and self._token != refused and self._clock() < self._refresh_at:
                return self._token  # someone already logged in again after that token
            logger.info("The exchange at %s refused the token (HTTP 401); logging in again.", self.auth_domain)
            return self._login()

    def _login(self) -> str | None:
        password = os.environ[PASSWORD_ENV]
        remember_secret(password)
        token = self._login_function(self.auth_domain, self.username, password)
        if token is None:
            self._token, self._refresh_at = None, 0.0
            return None
        remember_secret(token)
        self._token = token
        self._refresh_at = self._clock() + refresh_delay(token)
        self.logins += 1
        logger.debug("Logged in at %s; token refresh in %.0f s.", self.auth_domain, self._refresh_at - self._clock())
        return token


def _new_provider(key: tuple[str, str]) -> TokenProvider:
    return TokenProvider(*key)


# A forked child logs in on its own: a token is cheap, a lock held at the fork is not.
_providers: PerProcessMap[tuple[str, str], TokenProvider] = PerProcessMap(_new_provider)


def token_provider(auth_domain: str) -> TokenProvider:
    """The process's provider for ``auth_domain`` and env ``API_CLIENT_USERNAME`` (KeyError if unset)."""
    return _providers.get((auth_domain.rstrip("/"), os.environ[USERNAME_ENV]))
