"""A fleet run ends on the exchange's finish, not on one anybody can publish. Pure."""

from orchestrator.finish import QUIET_MAX_S, QUIET_MIN_S, FinishWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_run_is_done_once_every_aggregator_finished_and_the_exchange_went_quiet():
    clock = Clock()
    watch = FinishWatch(clock)
    for _ in range(5):  # events every 1.5 s
        watch.on_event("a")
        watch.on_event("b")
        clock.now += 1.5
    watch.on_finish("a")
    assert not watch.done(2)
    watch.on_finish("b")
    assert watch.quiet_needed() == 3.0 and not watch.done(2)
    clock.now += 1.6  # 3.1 s after the last event
    assert watch.done(2)


def test_a_finish_followed_by_more_events_was_forged_and_is_forgotten():
    clock = Clock()
    watch = FinishWatch(clock)
    watch.on_event("a")
    watch.on_finish("a")
    clock.now += 0.5
    assert watch.on_event("a") is True  # the exchange is still running: that finish was not its own
    clock.now += 100
    assert not watch.done(1)
    watch.on_finish("a")
    assert watch.on_event("b") is False and watch.done(1) is False  # b's events keep the run alive
    clock.now += QUIET_MAX_S
    assert watch.done(1)


def test_the_quiet_period_stays_within_its_bounds():
    clock = Clock()
    watch = FinishWatch(clock)
    assert watch.quiet_needed() == QUIET_MIN_S
    watch.on_event("a")
    clock.now += 3600  # a paused exchange
    watch.on_event("a")
    assert watch.quiet_needed() == QUIET_MAX_S
    assert not FinishWatch(clock).done(0)
