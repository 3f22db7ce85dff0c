"""Is the server newer than this SDK? A warning when it is (REST.md 1.1, ``API-VERSION``)."""

from __future__ import annotations

import logging
import re
from typing import Any

from gsy_e_sdk.wire.version import __version__

logger = logging.getLogger(__name__)


def _version_tuple(version: str) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", version)
    return tuple(int(part) for part in parts) if parts else None


def validate_client_up_to_date(response: Any) -> None:
    """Warn when the server's ``API-VERSION`` header is newer than this SDK.

    Versions are compared number by number (the original compared strings, so it thought
    ``1.10.0`` older than ``1.3.0``); unparsable versions fall back to string comparison.
    """
    headers = getattr(response, "headers", None) or {}
    server_version = headers.get("API-VERSION")
    if not server_version:
        return
    ours, theirs = _version_tuple(__version__), _version_tuple(server_version)
    outdated = ours < theirs if ours is not None and theirs is not None else __version__ < server_version
    if outdated:
        logger.warning(
            "Your version of the client %s is outdated, kindly upgrade to version %s "
            "to make use of our latest features.",
            __version__,
            server_version,
        )
