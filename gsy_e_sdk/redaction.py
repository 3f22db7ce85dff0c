"""Secrets out of logs: every password and token the SDK handles is hidden from what it logs.

``jwt_auth`` registers each password and token it sees; ``redact`` replaces them in any text,
and ``RedactingFilter`` does it for the records of third-party loggers we hand out (the
websockets library's debug lines carry headers).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

REDACTED = "***"

_secrets: deque[str] = deque(maxlen=64)
_secrets_lock = threading.Lock()


def remember_secret(secret: str | None) -> None:
    """Have ``redact`` hide ``secret`` from now on (tokens and passwords)."""
    if secret and len(secret) >= 4:
        with _secrets_lock:
            if secret not in _secrets:
                _secrets.append(secret)


def redact(text: Any) -> str:
    """``text`` as a string with every known password and token replaced by ``***``."""
    result = str(text)
    with _secrets_lock:
        secrets = list(_secrets)
    for secret in secrets:
        if secret in result:
            result = result.replace(secret, REDACTED)
    return result


class RedactingFilter(logging.Filter):
    """Rewrites a record's message without secrets (for third-party loggers we hand out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if "authorization" in cleaned.lower():
            # Header lines are dropped whole: a token we have not seen yet would pass redact().
            head, _, _ = cleaned.partition(":")
            cleaned = f"{head}: {REDACTED}" if "authorization" in head.lower() else cleaned
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
