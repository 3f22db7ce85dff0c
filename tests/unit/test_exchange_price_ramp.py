"""The reference strategies' price ramp (EXCHANGE.md 3.8), written once in gsy_e_sdk/wire/price_ramp.py."""

from __future__ import annotations

from itertools import pairwise

import pytest

from gsy_e_sdk.wire.price_ramp import ramp_rate, update_index, updates_per_slot


def test_a_fifteen_minute_slot_with_one_minute_updates_has_fourteen_steps() -> None:
    assert updates_per_slot(900, 60) == 14
    assert updates_per_slot(900, 900) == 1  # never fewer than one
    assert [update_index(seconds, 60, 14) for seconds in (0, 59, 60, 839, 840, 899)] == [0, 0, 1, 13, 14, 14]


@pytest.mark.parametrize(("initial", "final"), [(30.0, 10.0), (5.0, 35.0)])
def test_fitted_ramps_move_evenly_and_end_on_the_final_rate(initial: float, final: float) -> None:
    rates = [ramp_rate(initial, final, step, 14) for step in range(16)]
    assert rates[0] == initial and rates[14] == pytest.approx(final) and rates[15] == final
    steps = {round(later - earlier, 9) for earlier, later in pairwise(rates[:15])}
    assert steps == {round((final - initial) / 14, 9)}


def test_a_fixed_step_stops_at_the_final_rate() -> None:
    selling = [ramp_rate(30.0, 20.0, step, 14, fit_to_limit=False, step=4.0) for step in range(4)]
    buying = [ramp_rate(10.0, 15.0, step, 14, fit_to_limit=False, step=4.0) for step in range(3)]
    assert selling == [30.0, 26.0, 22.0, 20.0] and buying == [10.0, 14.0, 15.0]
