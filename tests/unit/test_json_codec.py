"""The wire's JSON codec: orjson's speed, the standard library's reach."""

import json
import math

import pytest

from gsy_e_sdk.wire import json_codec


def test_round_trips_what_the_protocol_sends():
    message = {"event": "tick", "slot_completion": "30%", "grid_tree": {"a": {"energy": 0.125, "n": [1, 2, None]}},
               "unicode": "Zürich ⚡"}
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
    assert json.loads(json_codec.dumps({"big": 2 ** 70})) == {"big": 2 ** 70}
    assert json_codec.dumps({1: "a"}) == '{"1":"a"}'
    assert json.loads(json_codec.dumps({"rate": float("nan")})) == {"rate": None}


def test_bad_input_raises_what_json_raises():
    with pytest.raises(ValueError):
        json_codec.loads("{not json")
    with pytest.raises(TypeError):
        json_codec.dumps({"value": object()})
