"""Why the exchange refused a command, in a few words a results table can count.

The answers keep the reference exchange's texts (REDIS.md 6.5); this only sorts them, so a run's
summary can say ``rejected: 12 (9 slot closed, 3 over the asset's energy)`` instead of a bare count.
"""

from __future__ import annotations

from typing import Any

# (a phrase of the answer's text, the reason counted), first match wins.
_PHRASES: tuple[tuple[str, str], ...] = (
    ("is not currently in the spot", "slot closed"),
    ("names the current spot slot", "time_slot names the spot slot"),
    ("is not controlled by aggregator", "area not controlled"),
    ("does not exist", "unknown area"),
    ("not supported", "not supported"),
    ("Not executed: the answer", "batch answer too large"),
    ("Internal error", "internal error"),
)


def rejection_reason(response: dict[str, Any]) -> str:
    """The reason an error answer counts under."""
    text = str(response.get("error_message") or response.get("message") or "")
    for phrase, reason in _PHRASES:
        if phrase in text:
            return reason
    if "create on area" in text:
        # An order refused with no reason given is one whose energy the asset cannot trade.
        return "over the asset's energy" if text.endswith("}.") else "bad order arguments"
    return "other"
