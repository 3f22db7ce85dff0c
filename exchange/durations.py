"""Human durations such as ``15m``, ``15s``, ``1d`` or ``1h30m`` used by the CLI and scenarios."""

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|min|s|sec)?", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1, None: 1}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``value`` into a timedelta; bare numbers are seconds. ``ValueError`` if malformed."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return timedelta(seconds=value)
    text = str(value).strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    seconds = 0.0
    position = 0
    for match in _PART.finditer(text):
        if match.start() != position or not match.group(0):
            raise ValueError(f"not a duration: {value!r} (use e.g. 15m, 15s, 1h, 1d)")
        unit = match.group(2).lower() if match.group(2) else None
        seconds += float(match.group(1)) * _UNIT_SECONDS[unit]
        position = match.end()
    if position != len(text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 15m, 15s, 1h, 1d)")
    return timedelta(seconds=seconds)
