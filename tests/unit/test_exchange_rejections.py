"""The exchange's error answers sorted into the reasons a run's summary counts."""

from __future__ import annotations

import pytest

from gsy_local_exchange.rejections import rejection_reason


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            {
                "error_message": "Error when handling bid create on area Load 1 with arguments {'energy': 1}. "
                "Timeslot 2026-06-01T10:00 is not currently in the spot, future or settlement markets."
            },
            "slot closed",
        ),
        (
            {"error_message": "Error when handling offer create on area PV with arguments {'energy': 9}."},
            "over the asset's energy",
        ),
        (
            {"error_message": "Error when handling offer create on area PV with arguments {}. energy: Field required"},
            "bad order arguments",
        ),
        ({"message": "Area a1 is not controlled by aggregator g1"}, "area not controlled"),
        ({"message": "Area a1 does not exist"}, "unknown area"),
        ({"message": "Command type not supported for device a1"}, "not supported"),
        ({"message": "Internal error while executing the command"}, "internal error"),
        ({"message": "something new"}, "other"),
        ({}, "other"),
    ],
)
def test_each_error_answer_counts_under_one_reason(answer, reason):
    assert rejection_reason({"status": "error", **answer}) == reason
