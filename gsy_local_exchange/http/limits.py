"""The facade's configurable bounds (``exchange run/http`` options): bodies, batches, proxies, GraphQL.

Every request an unauthenticated or hostile client can send is bounded before it costs memory
or CPU; the defaults fit the SDK's traffic with a wide margin (README: the HTTP facade).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class FacadeLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Every request body, the unauthenticated login's included; larger ones get 413 unread.
    max_body_bytes: int = Field(default=1 * MIB, ge=1024)
    # batch-commands/ carries up to max_batch_commands orders (about 150 bytes each).
    max_batch_body_bytes: int = Field(default=16 * MIB, ge=1024)
    max_batch_commands: int = Field(default=10_000, ge=1)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed; nobody's by default.
    trusted_proxies: tuple[str, ...] = ()
    graphql_introspection: bool = False
