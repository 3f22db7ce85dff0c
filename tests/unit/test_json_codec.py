"""The wire's JSON codec: orjson's speed, the standard library's reach."""

import json
import math

import pytest

from gsy_e_sdk.wire import json_codec


def test_round_trips_what_the_protocol_sends():
    message = {
        "event": "tick",
        "slot_completion": "30%",
        "grid_tree": {"a": {"energy": 0.125, "n": [1, 2, None]}},
        "unicode": "Zürich ⚡",
    }
    text = json_codec.dumps(message)
    assert json.loads(text) == message and json_codec.loads(text) == message
    assert json_codec.loads(json_codec.dumpb(message)) == message
    assert json_codec.loads(memoryview(json_codec.dumpb(message))) == message


def test_reads_what_only_the_standard_library_reads():
    assert math.isnan(json_codec.loads('{"rate": NaN}')["rate"])
    # Beyond 64 bits orjson reads a float (documented); beyond Python's digit limit, json's error.
    assert json_codec.loads('{"big": 123456789012345678901234567890}')["big"] == pytest.approx(1.2345678901e29)
    with pytest.raises(ValueError):
        json_codec.loads("1" * 5000)


def test_writes_what_only_the_standard_library_writes():
    assert json.loads(json_codec.dumps({"big": 2**70})) == {"big": 2**70}
    assert json_codec.dumps({1: "a"}) == '{"1":"a"}'
    assert json.loads(json_codec.dumps({"rate": float("nan")})) == {"rate": None}


def test_bad_input_raises_what_json_raises():
    with pytest.raises(ValueError):
        json_codec.loads("{not json")
    with pytest.raises(TypeError):
        json_codec.dumps({"value": object()})


def test_small_encodings_hold_only_their_own_bytes():
    """Thousands of small states are encoded at once per task: each must not keep a 4 KiB buffer."""
    import gc

    def rss_kib() -> int:
        with open("/proc/self/status") as status:
            return int(status.read().split("VmRSS:")[1].split()[0])

    gc.collect()
    before = rss_kib()
    held = [json_codec.dumpb({"slot": "2026-06-01T10:00", "n": index}) for index in range(20_000)]
    per_item = (rss_kib() - before) * 1024 / len(held)
    assert json.loads(held[-1]) == {"slot": "2026-06-01T10:00", "n": 19_999}
    assert per_item < 1024, f"{per_item:.0f} bytes held per small encoding"
