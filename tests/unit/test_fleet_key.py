"""The fleet's key: ids only its holders can derive, the same across processes and restarts."""

import pytest

from orchestrator.fleet_key import MIN_SECRET_CHARS, SECRET_ENV, FleetKeyError, fleet_key, keyed_uuid


class _Redis:
    """Just SET NX and GET: the key's storage contract, without a server (pure logic under test)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def set(self, name: str, value: str, nx: bool = False) -> None:
        if not (nx and name in self.values):
            self.values[name] = value.encode()

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)


def test_the_key_is_generated_once_per_fleet_and_then_shared(monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    store = _Redis()
    first = fleet_key(store, "a")
    assert fleet_key(store, "a") == first and len(first) == 64
    assert fleet_key(store, "b") != first


def test_the_environment_wins_and_must_be_long_enough(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "s" * MIN_SECRET_CHARS)
    assert fleet_key(_Redis(), "a") == b"s" * MIN_SECRET_CHARS
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(FleetKeyError, match=SECRET_ENV):
        fleet_key(_Redis(), "a")
    monkeypatch.setenv(SECRET_ENV, "")  # an empty variable (e.g. from compose) means unset
    assert len(fleet_key(_Redis(), "a")) == 64


def test_keyed_uuids_depend_on_key_and_text():
    one = keyed_uuid(b"k" * 32, "x")
    assert one == keyed_uuid(b"k" * 32, "x") != keyed_uuid(b"j" * 32, "x") != keyed_uuid(b"k" * 32, "y")
    assert one[14] == "4"  # a well-formed uuid
