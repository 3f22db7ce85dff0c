"""Who may log in to the facade: users from a file or the environment, never from argv.

Sources, first found wins: ``--users-file`` / ``GSY_EXCHANGE_USERS_FILE`` (a JSON or YAML
mapping of user name to password), ``GSY_EXCHANGE_USERS`` (the same mapping as JSON), then the
single user ``API_CLIENT_USERNAME`` / ``API_CLIENT_PASSWORD`` of the exchange's own environment,
so a script and a local exchange started from one shell agree without further set-up.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path

import yaml
from pydantic import RootModel, SecretStr, ValidationError, field_validator


class UsersError(ValueError):
    """The user list is missing or malformed (the message never contains a password)."""


class Users(RootModel[dict[str, SecretStr]]):
    @field_validator("root")
    @classmethod
    def _not_empty(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if not value:
            raise ValueError("at least one user is needed")
        for name, password in value.items():
            if not name.strip():
                raise ValueError("user names must not be empty")
            if not password.get_secret_value():
                raise ValueError(f"user {name!r} has an empty password")
        return value

    def check(self, username: object, password: object) -> bool:
        """Constant-time comparison, so timing does not tell how much of a password matched."""
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        expected = self.root.get(username)
        candidate = password.encode()
        if expected is None:
            hmac.compare_digest(candidate, candidate)  # same work for unknown users
            return False
        return hmac.compare_digest(expected.get_secret_value().encode(), candidate)

    @property
    def names(self) -> list[str]:
        return sorted(self.root)


def load_users(users_file: Path | None = None, environ: dict[str, str] | None = None) -> Users:
    env = os.environ if environ is None else environ
    path = users_file or (Path(env["GSY_EXCHANGE_USERS_FILE"]) if env.get("GSY_EXCHANGE_USERS_FILE") else None)
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise UsersError(f"cannot read users file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise UsersError(f"users file {path} is neither JSON nor YAML: {exc}") from None
        return _validated(raw, f"users file {path}")
    if env.get("GSY_EXCHANGE_USERS"):
        try:
            raw = json.loads(env["GSY_EXCHANGE_USERS"])
        except ValueError:
            raise UsersError('GSY_EXCHANGE_USERS must be a JSON object {"user": "password"}') from None
        return _validated(raw, "GSY_EXCHANGE_USERS")
    if env.get("API_CLIENT_USERNAME") and env.get("API_CLIENT_PASSWORD"):
        return _validated({env["API_CLIENT_USERNAME"]: env["API_CLIENT_PASSWORD"]}, "API_CLIENT_USERNAME")
    raise UsersError(
        'no users configured: set GSY_EXCHANGE_USERS (JSON {"user": "password"}), '
        "GSY_EXCHANGE_USERS_FILE or --users-file, or API_CLIENT_USERNAME and API_CLIENT_PASSWORD"
    )


def _validated(raw: object, source: str) -> Users:
    if not isinstance(raw, dict):
        raise UsersError(f"{source} must map user names to passwords")
    try:
        return Users.model_validate(
            {str(name): str(password) if password is not None else "" for name, password in raw.items()}
        )
    except ValidationError as exc:
        # Only the messages: pydantic would otherwise echo the input, passwords included.
        problems = "; ".join(error["msg"] for error in exc.errors())
        raise UsersError(f"{source}: {problems}") from None
