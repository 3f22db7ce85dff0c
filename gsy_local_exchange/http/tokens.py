"""JWT access tokens of the facade (REST.md 1): HS256, ``Authorization: JWT <token>``.

The signing secret comes from ``GSY_EXCHANGE_JWT_SECRET``; without it every start draws a new
one, so tokens do not survive a restart and clients log in again (which they must handle anyway).
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
DEFAULT_LIFETIME_S = 172_800  # 48 h, the hosted platform's JWT_TOKEN_EXPIRY_IN_SECS


class TokenError(Exception):
    """Why a request is not authenticated; the text is safe to return to the caller."""


@dataclass(frozen=True)
class Identity:
    user: str
    expires_at: float  # epoch seconds: a websocket opened with the token is closed then


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    lifetime_s: float = DEFAULT_LIFETIME_S

    @classmethod
    def from_env(cls, lifetime_s: float = DEFAULT_LIFETIME_S) -> TokenIssuer:
        return cls(os.environ.get("GSY_EXCHANGE_JWT_SECRET") or secrets.token_urlsafe(32), lifetime_s)

    def issue(self, username: str) -> str:
        now = time.time()
        claims = {"sub": username, "iat": int(now), "exp": int(now + self.lifetime_s), "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def identity(self, authorization: str | None) -> Identity:
        """Who an ``Authorization`` header proves to be, and until when; or ``TokenError``."""
        if not authorization:
            raise TokenError("Authentication credentials were not provided.")
        scheme, _, token = authorization.partition(" ")
        if scheme != "JWT" or not token.strip():
            raise TokenError("Authorization header must be 'JWT <token>'.")
        try:
            claims = jwt.decode(token.strip(), self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("Signature has expired.") from None
        except jwt.InvalidTokenError:
            raise TokenError("Error decoding signature.") from None
        return Identity(str(claims["sub"]), float(claims["exp"]))
