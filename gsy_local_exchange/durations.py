"""Human durations such as ``15m``, ``15s``, ``1d`` or ``1h30m`` used by the CLI and scenarios."""

import math
import re
from datetime import timedelta

# ASCII only: under Unicode case folding "ſ" would match "s" and then miss _UNIT_SECONDS.
# The longer units come first, or "5min" would stop after "5m".
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|sec|d|h|m|s)?", re.IGNORECASE | re.ASCII)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1, None: 1}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``value`` into a timedelta; bare numbers are seconds. ``ValueError`` if malformed."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {_shown(value)}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration must not be negative: {_shown(value)}")
        return _seconds(value, value)
    text = str(value).strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    seconds = 0.0
    position = 0
    for match in _PART.finditer(text):
        if match.start() != position or not match.group(0):
            raise ValueError(f"not a duration: {_shown(value)} (use e.g. 15m, 15s, 1h, 1d)")
        unit = match.group(2).lower() if match.group(2) else None
        seconds += float(match.group(1)) * _UNIT_SECONDS[unit]
        position = match.end()
    if position != len(text):
        raise ValueError(f"not a duration: {_shown(value)} (use e.g. 15m, 15s, 1h, 1d)")
    return _seconds(seconds, value)


def _seconds(seconds: float, value: object) -> timedelta:
    try:
        if not math.isfinite(seconds):
            raise OverflowError
        return timedelta(seconds=seconds)
    except OverflowError:  # also an int too large for a float
        raise ValueError(f"duration out of range: {_shown(value)}") from None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
