"""``slot_completion`` is written and read in one place each (REDIS.md 7.2: ``"40%"``)."""

import pytest

from gsy_e_sdk.wire.times import format_completion, parse_completion


@pytest.mark.parametrize("percent", [0, 10, 40, 90])
def test_completion_round_trips(percent):
    assert format_completion(percent) == f"{percent}%"
    assert parse_completion(format_completion(percent)) == percent


@pytest.mark.parametrize("garbage", [None, "", "%", "abc%", "1e999%", [], {"a": 1}])
def test_unreadable_completion_is_zero(garbage):
    assert parse_completion(garbage) == 0


def test_forgiving_spellings():
    assert parse_completion(" 30 % ") == 30 and parse_completion("30.0%") == 30 and parse_completion(50) == 50
