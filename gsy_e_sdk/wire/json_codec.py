"""JSON for the wire: orjson where it can, the standard library where it cannot.

A fleet's events, batches, task messages and strategy states are megabytes per tick, and
decoding and encoding them was the largest single cost of the dispatcher and the workers;
orjson does it several times faster. The standard library stays the fallback for what orjson
refuses (NaN and Infinity in input, integers beyond 64 bits, deep nesting, types it does not
know), so every message the standard library read or wrote before still reads and writes. Two
differences: a NaN or infinite float is written as ``null`` (valid JSON), not as ``NaN``; an
integer beyond 64 bits is read as a float. Neither occurs in the protocol's messages; the local
exchange reads its clients' untrusted input with the standard library all the same.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_SMALL = 4096


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON text; raises ``ValueError`` for anything that is not JSON.

    That includes bytes that are not UTF-8 (``UnicodeDecodeError``) and values nested too deeply
    (orjson stops at 1,024 levels, the standard library raises ``RecursionError`` at about 1,000,
    turned into a ``ValueError`` here), so one ``except ValueError`` covers every bad input.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(bytes(data) if isinstance(data, memoryview) else data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(value: Any) -> str:
    """Compact JSON text; raises ``TypeError`` for what neither encoder can represent."""
    return dumpb(value).decode()


def dumpb(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, for Redis, which stores bytes anyway."""
    try:
        encoded = orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()
    # orjson's bytes keep its 4 KiB starting buffer: a worker holding a thousand small states
    # at once held 4 MB for 50 KB of JSON. A right-sized copy costs well under a microsecond.
    return bytes(memoryview(encoded)) if len(encoded) < _SMALL else encoded
