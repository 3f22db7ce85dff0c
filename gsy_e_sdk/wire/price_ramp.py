"""The price ramp of the reference (template) strategies, EXCHANGE.md 3.8. Pure functions.

Written once for both sides: the local exchange prices the assets no client controls with it,
and the fleet's ``price_ramp`` strategy (``workers/strategies/ramp.py``) trades like them. A slot
has ``N`` price updates; each moves the rate one step from the initial towards the final rate,
and the final rate caps the ramp.
"""

from __future__ import annotations


def updates_per_slot(slot_seconds: float, update_interval_seconds: float) -> int:
    """N = max(int(slot / update interval) - 1, 1): 14 for 15-minute slots and 1-minute updates."""
    return max(int(slot_seconds / update_interval_seconds) - 1, 1)


def update_index(elapsed_seconds: float, update_interval_seconds: float, updates: int) -> int:
    """Which price step applies ``elapsed_seconds`` into the slot (0 at slot start, capped at N)."""
    return min(int(elapsed_seconds // update_interval_seconds), updates)


def ramp_rate(
    initial: float, final: float, step_index: float, updates: int, fit_to_limit: bool = True, step: float | None = None
) -> float:
    """Rate after ``step_index`` updates, moving from ``initial`` towards ``final`` and capped there.

    With ``fit_to_limit`` the step is (final - initial) / N so the final rate is reached at the
    last update; otherwise ``step`` (the per-update increase/decrease) is used.
    """
    if fit_to_limit or step is None:
        delta = (final - initial) / updates
    else:
        delta = step if final >= initial else -step
    rate = initial + delta * step_index
    return min(rate, final) if final >= initial else max(rate, final)
