"""Flower's basic-auth credentials from the environment, for ``gsy-e-sdk flower`` and ``celery -A workers flower``.

From ``GSY_FLOWER_BASIC_AUTH`` or Flower's own ``FLOWER_BASIC_AUTH``, or a file named by
``GSY_FLOWER_BASIC_AUTH_FILE``; never from the command line, where every user could read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

AUTH_ENV_VARS = ("GSY_FLOWER_BASIC_AUTH", "FLOWER_BASIC_AUTH")
AUTH_FILE_ENV_VAR = "GSY_FLOWER_BASIC_AUTH_FILE"


class FlowerAuthError(click.UsageError):
    """The basic-auth setting is missing or malformed (the message never contains the secret)."""


def basic_auth_from_env(env: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """``(source, ["user:password", ...])`` from the environment, or None when nothing is set.

    Several credentials are separated by commas (Flower's format), so a password cannot contain one.
    """
    source, raw = "", ""
    for name in AUTH_ENV_VARS:
        if env.get(name, "").strip():
            source, raw = name, env[name]
            break
    else:
        path = env.get(AUTH_FILE_ENV_VAR, "").strip()
        if not path:
            return None
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FlowerAuthError(f"cannot read {AUTH_FILE_ENV_VAR} file {path}: {exc.strerror}") from None
        source = f"{AUTH_FILE_ENV_VAR} ({path})"
    credentials = [part.strip() for part in raw.strip().split(",") if part.strip()]
    for position, credential in enumerate(credentials, start=1):
        user, separator, password = credential.partition(":")
        if not separator or not user or not password:
            raise FlowerAuthError(
                f"{source}: entry {position} must look like user:password "
                "(non-empty user and password, entries separated by commas)"
            )
    if not credentials:
        raise FlowerAuthError(f"{source} is empty; expected user:password")
    return source, credentials
