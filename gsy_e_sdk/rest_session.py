"""Every HTTP call of the SDK: one ``requests.Session`` per process, retries, auth, logging.

Why one module: the retry policy, timeouts, the JWT header, the 401 re-login and the rule that
secrets never reach a log line are decided once, here.

* Retries (urllib3 ``Retry``, the HTTP policy of ``gsy_e_sdk/wire/retry.py``): connection
  errors, read errors and statuses 429/500/502/503/504 are retried a bounded number of times
  with exponential backoff plus jitter, honouring ``Retry-After`` (capped). Every method is
  retried, POST included: our bodies carry a ``transaction_id`` and the exchange answers a
  repeated id instead of applying it twice.
* Explicit (connect, read) timeouts; a call never hangs forever.
* Bodies are JSON on GET too and get a ``transaction_id`` (REST.md 2); ``Authorization: JWT``.
* A 401 makes the token provider log in again (once for all concurrent callers) and the call is
  repeated once with the new token.
* A non-2xx answer is logged as ``Request to <url> failed with status code <code>. Response
  body: <text>`` (the text redacted) and the call returns None, as the original did.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from gsy_e_sdk import constants
from gsy_e_sdk.redaction import redact
from gsy_e_sdk.wire.pending import new_transaction_id
from gsy_e_sdk.wire.per_process import PerProcess
from gsy_e_sdk.wire.retry import CappedRetry, http_retry

if TYPE_CHECKING:
    from gsy_e_sdk.jwt_auth import TokenProvider

logger = logging.getLogger(__name__)

TIMEOUT = (constants.HTTP_CONNECT_TIMEOUT_SECS, constants.HTTP_READ_TIMEOUT_SECS)
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


# The retry the session mounts, under the name scripts and tests know it by.
retry_policy: Callable[[], CappedRetry] = http_retry


def _new_session() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(
        max_retries=http_retry(), pool_connections=constants.HTTP_POOL_SIZE, pool_maxsize=constants.HTTP_POOL_SIZE
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_session: PerProcess[requests.Session] = PerProcess(_new_session)


def session() -> requests.Session:
    """The process's session (its connection pools are shared by all clients)."""
    return _session.get()


def send(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response | None:
    """One HTTP exchange (with the retries above); None when no answer arrived at all."""
    try:
        return session().request(
            method,
            url,
            data=json.dumps(body if body is not None else {}),
            headers={**JSON_HEADERS, **(headers or {})},
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        # The exception text names the URL and the cause, never our headers or body.
        logger.error("Request to %s failed: %s", url, _describe(exc))
        return None


def _describe(exc: Exception) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


def with_transaction_id(body: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``body`` that carries a ``transaction_id`` (REST.md 2)."""
    body = dict(body or {})
    body.setdefault("transaction_id", new_transaction_id())
    return body


def request_json(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    *,
    auth: TokenProvider | None = None,
    add_transaction_id: bool = True,
    headers: dict[str, str] | None = None,
) -> Any:
    """The parsed JSON answer of a 2xx response, else None (logged)."""
    payload = with_transaction_id(body) if add_transaction_id else dict(body or {})
    token = auth.token() if auth is not None else None
    response = send(method, url, payload, _auth_headers(token, headers))
    if response is not None and response.status_code == 401 and auth is not None:
        token = auth.token_refused(token)
        response = send(method, url, payload, _auth_headers(token, headers))
    if response is None:
        return None
    if not 200 <= response.status_code < 300:
        logger.error(
            "Request to %s failed with status code %s. Response body: %s",
            url,
            response.status_code,
            redact(response.text),
        )
        return None
    try:
        return response.json()
    except ValueError:
        logger.error(
            "Request to %s answered %s with a body that is not JSON: %.200s",
            url,
            response.status_code,
            redact(response.text),
        )
        return None


def _auth_headers(token: str | None, headers: dict[str, str] | None) -> dict[str, str]:
    merged = dict(headers or {})
    if token is not None:
        merged["Authorization"] = f"JWT {token}"
    return merged
