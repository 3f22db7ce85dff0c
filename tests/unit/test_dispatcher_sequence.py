"""The dispatcher's event-sequence check (pure): lost, repeated and resynced events."""

from __future__ import annotations

import redis

from orchestrator.sequence import SequenceCheck, SequenceTracker, check_sequence
from orchestrator.state import StateStore

A, B, C = "2026-06-01T10:00", "2026-06-01T10:15", "2026-06-01T10:30"
IN_ORDER = SequenceCheck(missed=0, resync=False, duplicate=False)


def run(events: list[tuple[str, str, int]]) -> list[SequenceCheck]:
    """Feed a stream of (event, slot, completion) as the dispatcher does; the check of each.

    Like the dispatcher, a dropped duplicate does not move the position."""
    previous = None
    checks = []
    for event, slot, completion in events:
        check = check_sequence(previous, event, slot, completion)
        checks.append(check)
        if not check.duplicate:
            previous = (slot, completion)
    return checks


def slot_events(slot: str) -> list[tuple[str, str, int]]:
    return [("market", slot, 0)] + [("tick", slot, completion) for completion in range(10, 100, 10)]


def test_a_complete_stream_has_no_gap_and_no_resync():
    assert all(check == IN_ORDER for check in run(slot_events(A) + slot_events(B) + slot_events(C)))


def test_a_market_event_never_resyncs_whatever_came_before():
    assert check_sequence(None, "market", A, 0) == IN_ORDER
    assert check_sequence((A, 40), "market", B, 0) == IN_ORDER
    assert check_sequence((B, 40), "market", B, 0) == IN_ORDER  # e.g. a new run of the same day


def test_lost_ticks_within_a_slot_are_counted_without_resync():
    assert check_sequence((A, 10), "tick", A, 20) == IN_ORDER
    assert check_sequence((A, 10), "tick", A, 40) == (2, False, False)
    assert check_sequence((A, 0), "tick", A, 20) == (1, False, False)


def test_a_lost_market_event_is_detected_and_its_first_tick_resyncs():
    stream = slot_events(A) + [event for event in slot_events(B) if event[0] != "market"] + slot_events(C)
    checks = run(stream)
    first_tick_of_b = len(slot_events(A))
    assert checks[first_tick_of_b] == (1, True, False)
    assert [index for index, check in enumerate(checks) if check != IN_ORDER] == [first_tick_of_b]


def test_a_lost_market_event_and_ticks_count_every_lost_event():
    assert check_sequence((A, 90), "tick", B, 30) == (3, True, False)  # market, 10 % and 20 % of B
    assert check_sequence((A, 50), "tick", C, 10) == (1, True, False)  # what B lost is beyond knowing


def test_joining_mid_slot_resyncs_but_counts_nothing_lost():
    assert check_sequence(None, "tick", B, 40) == (0, True, False)


def test_an_event_delivered_twice_is_dispatched_once():
    doubled = [event for event in slot_events(A) + slot_events(B) for _ in range(2)]
    checks = run(doubled)
    assert [check.duplicate for check in checks] == [False, True] * (len(doubled) // 2)
    assert all(check == IN_ORDER for check in checks[::2])
    assert check_sequence((B, 0), "market", B, 0).duplicate
    assert check_sequence((B, 30), "tick", B, 30).duplicate
    assert not check_sequence((B, 30), "tick", C, 30).duplicate


def test_positions_outlive_the_tracker_and_count_what_was_missed(redis_url):
    store = StateStore(redis.Redis.from_url(redis_url), "sequence-test")
    store.reset()
    first = SequenceTracker(store)
    first.load()
    assert first.check("h", "agg", "market", "2026-06-01T10:00", 0) == SequenceCheck(0, False)
    first.save("agg", "2026-06-01T10:00", 0)
    first.flush()
    second = SequenceTracker(store)  # a restarted dispatcher
    second.load()
    assert second.check("h", "agg", "tick", "2026-06-01T10:00", 40) == SequenceCheck(3, False)
    assert second.check("h", "agg", "tick", "2026-06-01T10:00", 40).duplicate
    counters = store.counters()
    assert (counters["missed_events"], counters["duplicate_events"]) == (3, 1)
    store.reset()
