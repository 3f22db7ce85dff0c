"""The fleet's secret key, from which its aggregator uuids and batch transaction ids derive.

Ids must be the same for the same decision (a redelivered task or a restarted dispatcher re-sends
the ids it sent before, which the exchange answers without applying twice) yet unpredictable to
other users of the exchange, who could otherwise pre-empt an aggregator uuid or a transaction id
(de-duplication would then drop the fleet's real batch). So they are keyed hashes: HMAC-SHA256
under a per-fleet key from ``GSY_FLEET_SECRET``, else one generated on the fleet's first start and
kept in its Redis (outside the keys ``fresh`` runs clear), shared by its dispatcher and workers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid

import redis

from orchestrator.config import FleetConfigError

SECRET_ENV = "GSY_FLEET_SECRET"
MIN_SECRET_CHARS = 16


class FleetKeyError(FleetConfigError):
    """The configured secret is too short to keep ids unpredictable."""


def fleet_key(client: redis.Redis, fleet: str) -> bytes:
    """The key of ``fleet``: the env secret, else the one stored in Redis (created once, atomically)."""
    configured = os.environ.get(SECRET_ENV, "").strip()
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise FleetKeyError(f"{SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters")
        return configured.encode()
    name = f"gsy:fleet-key:{fleet}"
    client.set(name, secrets.token_hex(32), nx=True)
    stored = client.get(name)
    return stored if isinstance(stored, bytes) else str(stored).encode()


def keyed_uuid(key: bytes, text: str) -> str:
    """A uuid (version 4 layout) that only holders of ``key`` can derive from ``text``. Pure."""
    digest = hmac.new(key, text.encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))
