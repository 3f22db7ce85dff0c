"""Logging in (REST.md 1): tokens, the per-user request limit, and brute-force protection.

Failed logins are throttled by default, per user name and per peer address: a bucket of
failures that refills slowly, so a user mistyping a password a few times never notices, while
a guesser gets 429 after a handful of tries instead of ~900 guesses a second. Only failures
use the buckets up; while one is empty every attempt is refused before the password is even
looked at, so the answer says nothing about it. The peer is the TCP peer unless it is one of
the configured trusted proxies (uvicorn's proxy-header handling), so a client cannot rotate
``X-Forwarded-For`` to escape the throttle or to forge the address that is logged.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_local_exchange.http import models as m
from gsy_local_exchange.http.bodies import ApiError, json_response, parse_body, read_body
from gsy_local_exchange.http.rate_limit import RateLimiter
from gsy_local_exchange.http.tokens import Identity, TokenError, TokenIssuer
from gsy_local_exchange.http.users import Users

logger = logging.getLogger(__name__)
limited_log = RateLimitedLog(logger)

# (per second, burst): 10 failures at once, then one more every 6 s per user name (600 an hour at most).
FAILED_LOGINS_PER_USER = (1 / 6, 10)
# 20 failures at once, then one every 3 s per peer address.
FAILED_LOGINS_PER_PEER = (1 / 3, 20)
LOGIN_BODY_BYTES = 16 * 1024  # user name and password; far below the general body limit
_UNAUTHORIZED = {"WWW-Authenticate": 'JWT realm="api"'}


class Authenticator:
    def __init__(
        self,
        users: Users,
        issuer: TokenIssuer,
        requests: RateLimiter,
        failed_per_user: RateLimiter | None = None,
        failed_per_peer: RateLimiter | None = None,
    ) -> None:
        self.users = users
        self.issuer = issuer
        self.requests = requests
        self.failed_per_user = failed_per_user or RateLimiter(*FAILED_LOGINS_PER_USER)
        self.failed_per_peer = failed_per_peer or RateLimiter(*FAILED_LOGINS_PER_PEER)

    def identity(self, authorization: str | None) -> Identity:
        try:
            identity = self.issuer.identity(authorization)
        except TokenError as exc:
            raise ApiError(401, str(exc), _UNAUTHORIZED) from None
        if identity.user not in self.users.root:
            raise ApiError(401, "User is no longer known.", _UNAUTHORIZED)
        return identity

    def throttle(self, user: str) -> None:
        _refuse_for(self.requests.retry_after(user))

    async def login(self, request: Request) -> Response:
        peer = request.client.host if request.client else "?"
        try:
            self.throttle(f"login:{peer}")  # --rate-limit applies to logins per peer too
            body = parse_body(await read_body(request, LOGIN_BODY_BYTES), m.Login)
            known = body.username in self.users.root  # unknown names get no bucket of their own
            user_key = f"user:{body.username}"
            _refuse_for(
                max(self.failed_per_peer.blocked_for(peer), self.failed_per_user.blocked_for(user_key) if known else 0)
            )
        except ApiError as exc:
            return exc.response()
        if not self.users.check(body.username, body.password):
            self.failed_per_peer.retry_after(peer)
            if known:
                self.failed_per_user.retry_after(user_key)
            limited_log.warning("failed login for user %.200r from %s", body.username, peer)
            return JSONResponse({"error": "No active account found with the given credentials"}, status_code=401)
        return json_response({"access": self.issuer.issue(body.username)})


def _refuse_for(wait: int) -> None:
    if wait:
        raise ApiError(429, f"Request was throttled. Expected available in {wait} seconds.", {"Retry-After": str(wait)})
